// Evaluates a deployed auth.config.js the way a Convex backend does, in a fresh process (the
// backend uses a fresh isolate): stdin is {"source": "...", "env": {NAME: value}}; stdout is
// {"ok": {providers}} or {"missing": NAME} or {"error": "..."}.
//
// What is followed (convex-backend): `process.env` is a proxy whose every read goes to the
// deployment's variables, and reading one that is not set throws
// (crates/isolate/src/environment/auth_config.rs, npm-packages/udf-runtime/src/setup.ts), so even
// `process.env.X ?? fallback` fails; the default export must be `{providers: [...]}`
// (AuthConfigMissingExportError / AuthConfigNotMatchingSchemaError).
import { Buffer } from "node:buffer";

class MissingVariable extends Error {
  constructor(name) {
    super(`Environment variable ${name} is used in auth config file but its value was not set`);
    this.variable = name;
  }
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const { source, env } = JSON.parse(Buffer.concat(chunks).toString("utf8"));
const stdout = process.stdout;
const exit = process.exit.bind(process);
// The deployment that asked may be gone (a test ended): nobody to answer.
stdout.on("error", () => exit(0));
const write = (answer) => stdout.write(JSON.stringify(answer));

const variables = new Proxy(
  {},
  {
    get(_, name) {
      if (typeof name !== "string") return undefined;
      if (Object.hasOwn(env, name)) return env[name];
      throw new MissingVariable(name);
    },
    has: (_, name) => Object.hasOwn(env, name),
  },
);
// The module sees this `process`; Node's own code keeps its reference to the real one.
globalThis.process = { env: variables };

try {
  const url = `data:text/javascript;base64,${Buffer.from(source).toString("base64")}`;
  const module = await import(url);
  const config = module.default;
  if (config === undefined) {
    write({ error: "auth config file is missing default export" });
  } else if (!config || !Array.isArray(config.providers)) {
    write({ error: "auth config file must include a list of provider credentials" });
  } else {
    write({ ok: JSON.parse(JSON.stringify(config)) });
  }
} catch (e) {
  if (e instanceof MissingVariable) write({ missing: e.variable });
  else write({ error: String(e && e.message ? e.message : e) });
}
