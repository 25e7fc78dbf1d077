// A FAKE Convex deployment for tests and the demo: the parts of a Convex backend's HTTP API that
// workos-convex-auth uses, answering as the backend does. No Convex backend can run here, so this
// stands in for one; it is not Convex.
//
//   node tests/fake-convex/deployment.mjs --listen 127.0.0.1:0 --admin-key KEY
//
// prints `listening http://HOST:PORT` once ready. Followed from convex-backend (commit 94a42c3):
// - routes (crates/local_backend/src/router.rs): GET /api/list_environment_variables,
//   POST /api/update_environment_variables, POST /api/query;
// - auth (crates/local_backend/src/authentication.rs, crates/authentication,
//   crates/roles): `Authorization: Convex <admin key>`; a wrong key is 401 BadAdminKey (checked
//   while extracting, before the body), no key is 403 BadDeployKey (checked in the handler,
//   after the body); a header under 7 characters is 400 InvalidHeaderFailure;
// - errors are `{"code", "message"}` (crates/common/src/http/mod.rs);
// - update (crates/local_backend/src/environment_variables.rs, crates/application/src/lib.rs
//   update_environment_variables, crates/common/src/types/environment_variables.rs): body
//   `{"changes": [{"name", "value"}]}` (value null or absent unsets), Content-Type must be
//   application/json; names `^[a-zA-Z_]+[a-zA-Z0-9_]*$` of at most 256 bytes, values of at most
//   8192 bytes, at most 512 variables and 512 KiB in all, CONVEX_CLOUD_URL/CONVEX_SITE_URL
//   built-in; then the deployed auth.config.js is re-evaluated with the new variables and the
//   whole change refused (400) if that fails: AuthConfigMissingEnvironmentVariable for an unset
//   variable it reads, InvalidAuthConfig "This change would make the auth config invalid: …"
//   otherwise; nothing deployed yet: no evaluation. Success is 200 with an empty body;
// - query (crates/local_backend/src/public_api.rs, npm-packages/system-udfs):
//   `{"path", "args", "format"}` → 200 `{"status": "success", "value"}` or
//   `{"status": "error", "errorMessage"}`; `_system/frontend/listAuthProviders` lists the
//   evaluated providers, for admins only.
// Evaluation runs the deployed file in node (evaluate.mjs); the providers are checked as the
// backend deserialises them (crates/common/src/auth.rs: customJwt needs issuer, jwks, algorithm
// RS256/ES256; a WorkOS issuer without applicationID is InsecureConfiguration).
//
// Not Convex's, for the tests (under /_fake/): POST /_fake/push deploys an auth.config.js as
// `npx convex deploy` would (evaluated with the current variables, refused the same way);
// GET /_fake/state returns the variables, the providers and the count of each request.
import { spawn } from "node:child_process";
import http from "node:http";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const listen = flag("--listen", "127.0.0.1:0");
const adminKey = flag("--admin-key", "");
if (!adminKey) {
  console.error("usage: deployment.mjs --listen HOST:PORT --admin-key KEY");
  process.exit(2);
}

const MAX_NAME = 256;
const MAX_VALUE = 8 * 1024;
const MAX_COUNT = 512;
const MAX_TOTAL = 512 * 1024;
const BUILT_IN = new Set(["CONVEX_CLOUD_URL", "CONVEX_SITE_URL"]);
const NAME = /^[a-zA-Z_]+[a-zA-Z0-9_]*$/;

const state = {
  env: new Map(),
  module: null, // the deployed auth.config.js
  providers: [],
  requests: { list: 0, update: 0, query: 0, push: 0 },
  writes: 0,
};

class ConvexError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const evaluator = fileURLToPath(new URL("./evaluate.mjs", import.meta.url));

function evaluate(source, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [evaluator], { stdio: ["pipe", "pipe", "inherit"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.on("error", reject);
    child.on("close", () => {
      try {
        resolve(JSON.parse(out));
      } catch {
        reject(new Error(`evaluator answered ${JSON.stringify(out)}`));
      }
    });
    child.stdin.end(JSON.stringify({ source, env: Object.fromEntries(env) }));
  });
}

function checkProviders(config) {
  for (const p of config.providers) {
    if (p.type === "customJwt") {
      for (const field of ["issuer", "jwks"]) {
        if (typeof p[field] !== "string") throw new Error(`customJwt provider needs a string ${field}`);
      }
      if (p.algorithm !== "RS256" && p.algorithm !== "ES256") {
        throw new Error(`InvalidSignatureAlgorithm: ${p.algorithm}`);
      }
      if (p.applicationID !== undefined && typeof p.applicationID !== "string") {
        throw new Error("applicationID must be a string");
      }
      const issuer = p.issuer.replace(/\/+$/, "");
      if ((issuer === "https://api.workos.com" || issuer === "api.workos.com") && !p.applicationID) {
        throw new Error("InsecureConfiguration: a WorkOS issuer needs applicationID");
      }
    }
  }
  return config.providers;
}

// The providers `source` evaluates to with `env`, or the backend's error.
async function providersOf(source, env, explain) {
  const answer = await evaluate(source, env);
  if (answer.missing) {
    throw new ConvexError(
      400,
      "AuthConfigMissingEnvironmentVariable",
      `Environment variable ${answer.missing} is used in auth config file but its value was not set`,
    );
  }
  try {
    if (answer.error) throw new Error(answer.error);
    return checkProviders(answer.ok);
  } catch (e) {
    throw new ConvexError(400, "InvalidAuthConfig", `${explain}${e.message}`);
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on("data", (c) => {
      size += c.length;
      if (size > 8 * 1024 * 1024) {
        reject(new ConvexError(413, "PayloadTooLarge", "request body too large"));
        req.destroy();
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

function jsonBody(req, text) {
  const type = (req.headers["content-type"] || "").split(";")[0].trim().toLowerCase();
  if (type !== "application/json") {
    throw new ConvexError(400, "BadJsonBody", "Expected request with `Content-Type: application/json`");
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ConvexError(400, "BadJsonBody", `Failed to deserialize the JSON body: ${e.message}`);
  }
}

// "admin", "none" (no or a non-admin header) or throws for a wrong key.
function identity(req) {
  const header = req.headers.authorization;
  if (header === undefined) return "none";
  if (header.length < 7) throw new ConvexError(400, "InvalidHeaderFailure", "Invalid authentication header");
  if (header.slice(0, 7).toLowerCase() !== "convex ") return "none"; // a user's JWT
  if (header.slice(7) !== adminKey) {
    throw new ConvexError(401, "BadAdminKey", "The provided admin key was invalid for this instance");
  }
  return "admin";
}

function requireAdmin(who) {
  if (who !== "admin") {
    throw new ConvexError(
      403,
      "BadDeployKey",
      "The provided deploy key was invalid for this deployment. Double check that the environment this key was generated for matches the desired deployment.",
    );
  }
}

function bytes(text) {
  return Buffer.byteLength(text, "utf8");
}

async function update(body) {
  if (!body || !Array.isArray(body.changes)) {
    throw new ConvexError(400, "BadJsonBody", "Failed to deserialize the JSON body: missing field `changes`");
  }
  const next = new Map(state.env);
  const changes = body.changes.map(({ name, value }) => {
    if (typeof name !== "string" || !NAME.test(name)) {
      throw new ConvexError(
        400,
        "EnvironmentVariableNameInvalid",
        `The environment variable name ${name} is invalid. Environment variable names must begin with a letter and may only include characters a-z, A-Z, 0-9, and underscores.`,
      );
    }
    if (bytes(name) > MAX_NAME) {
      throw new ConvexError(
        400,
        "EnvironmentVariableNameTooLong",
        `The environment variable name ${name} is too long. Environment variable names must be less than ${MAX_NAME}.`,
      );
    }
    if (value !== undefined && value !== null && bytes(String(value)) > MAX_VALUE) {
      throw new ConvexError(
        400,
        "EnvironmentVariableValueTooLarge",
        `The environment variable value is ${bytes(String(value))} bytes, which is too large. (max size: ${MAX_VALUE}`,
      );
    }
    return { name, value: value ?? null };
  });
  // Unsets before sets, as the backend sorts them.
  for (const { name, value } of changes) if (value === null) next.delete(name);
  for (const { name, value } of changes) {
    if (value === null) continue;
    if (BUILT_IN.has(name)) {
      throw new ConvexError(400, "EnvVarNameForbidden", `Environment variable with name "${name}" is built-in and cannot be overridden`);
    }
    next.set(name, String(value));
  }
  if (next.size > MAX_COUNT) {
    throw new ConvexError(400, "EnvVarLimitMet", `The environment variable limit (${MAX_COUNT}) has been met.`);
  }
  const total = [...next].reduce((n, [k, v]) => n + bytes(k) + bytes(v), 0);
  if (total > MAX_TOTAL) {
    throw new ConvexError(400, "EnvVarTotalSizeLimitMet", `The total size of all environment variables (${total} bytes) exceeds the limit (${MAX_TOTAL} bytes).`);
  }
  const providers = state.module
    ? await providersOf(state.module, next, "This change would make the auth config invalid: ")
    : state.providers;
  state.env = next;
  state.providers = providers;
  state.writes += 1;
}

async function handle(req, res) {
  const url = new URL(req.url, "http://fake");
  const route = `${req.method} ${url.pathname}`;
  const send = (status, body) => {
    const text = body === undefined ? "" : JSON.stringify(body);
    res.writeHead(status, body === undefined ? {} : { "content-type": "application/json" });
    res.end(text);
  };
  try {
    switch (route) {
      case "GET /api/list_environment_variables": {
        state.requests.list += 1;
        requireAdmin(identity(req));
        return send(200, { environmentVariables: Object.fromEntries([...state.env].sort()) });
      }
      case "POST /api/update_environment_variables": {
        state.requests.update += 1;
        const who = identity(req);
        const body = jsonBody(req, await readBody(req));
        requireAdmin(who);
        await update(body);
        return send(200);
      }
      case "POST /api/query": {
        state.requests.query += 1;
        const who = identity(req);
        const body = jsonBody(req, await readBody(req));
        if (body.path === "_system/frontend/listAuthProviders" && who === "admin") {
          return send(200, { status: "success", value: state.providers });
        }
        return send(200, { status: "error", errorMessage: `Could not find public function for '${body.path}'.` });
      }
      case "POST /_fake/push": {
        state.requests.push += 1;
        requireAdmin(identity(req));
        const source = await readBody(req);
        const providers = await providersOf(source, state.env, "");
        state.module = source;
        state.providers = providers;
        return send(200, { providers });
      }
      case "GET /_fake/state":
        return send(200, {
          env: Object.fromEntries(state.env),
          providers: state.providers,
          deployed: state.module !== null,
          requests: state.requests,
          writes: state.writes,
        });
      default:
        return send(404, { code: "NotFound", message: `No route for ${route}` });
    }
  } catch (e) {
    if (e instanceof ConvexError) return send(e.status, { code: e.code, message: e.message });
    console.error(e);
    return send(500, { code: "InternalServerError", message: "Your request couldn't be completed. Try again later." });
  }
}

const [host, port] = [listen.slice(0, listen.lastIndexOf(":")), Number(listen.slice(listen.lastIndexOf(":") + 1))];
const server = http.createServer((req, res) => {
  handle(req, res);
});
server.requestTimeout = 30_000;
server.headersTimeout = 10_000;
server.listen(port, host, () => {
  const { address, port: bound } = server.address();
  console.log(`listening http://${address}:${bound}`);
});
