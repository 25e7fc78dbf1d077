// Checks generated Convex auth configs with the real `convex` package:
//   1. `tsc --noEmit --strict` on every <case>/convex/auth.config.ts (typed `satisfies AuthConfig`);
//   2. every provider of <case>/auth.config.json against the Convex CLI's own push schema
//      (`authInfo` in dist/cjs/cli/lib/deployApi/types.js), after mapping a missing
//      applicationID to null as the backend serialises it;
//   3. where <case>/env.json exists (spec.convex: the env-driven file), <case>/auth.config.js
//      evaluated as a Convex backend evaluates it (tests/fake-convex/evaluate.mjs) with those
//      variables must give exactly the providers of auth.config.json.
// Usage: node check.mjs DIR   (DIR must lie below this folder, so `convex/server` resolves)
// Prints one line per check and "N passed, N failed"; exits 1 when anything failed.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dir = resolve(process.argv[2] ?? "");
if (!process.argv[2] || !existsSync(dir)) {
  console.error("usage: node check.mjs DIR");
  process.exit(2);
}
const convexTypes = join(here, "node_modules/convex/dist/cjs/cli/lib/deployApi/types.js");
if (!existsSync(convexTypes)) {
  console.error(`convex is not installed: run npm ci in ${here}`);
  process.exit(2);
}
const { authInfo } = createRequire(import.meta.url)(convexTypes);
const version = JSON.parse(readFileSync(join(here, "node_modules/convex/package.json"), "utf8")).version;
console.log(`convex ${version}`);

let passed = 0;
let failed = 0;
const report = (ok, what, detail = "") => {
  ok ? passed++ : failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${what}${detail ? `: ${detail}` : ""}`);
};

writeFileSync(
  join(dir, "tsconfig.json"),
  JSON.stringify({
    compilerOptions: { strict: true, noEmit: true, module: "esnext", moduleResolution: "bundler", target: "es2022", skipLibCheck: true },
    include: ["**/convex/auth.config.ts"],
  }),
);
try {
  execFileSync(process.execPath, [join(here, "node_modules/typescript/bin/tsc"), "-p", dir], { encoding: "utf8" });
  report(true, "tsc --noEmit --strict");
} catch (e) {
  report(false, "tsc --noEmit --strict", `\n${e.stdout}${e.stderr}`);
}

for (const name of readdirSync(dir).sort()) {
  const json = join(dir, name, "auth.config.json");
  if (!existsSync(json)) continue;
  const { providers } = JSON.parse(readFileSync(json, "utf8"));
  providers.forEach((provider, i) => {
    const pushed = { ...provider, applicationID: provider.applicationID ?? null };
    const result = authInfo.safeParse(pushed);
    report(result.success, `${name} provider ${i + 1} authInfo`, result.success ? "" : JSON.stringify(result.error.issues));
  });
  const envFile = join(dir, name, "env.json");
  if (existsSync(envFile)) {
    const what = `${name} auth.config.js evaluated with its variables equals auth.config.json`;
    const source = readFileSync(join(dir, name, "auth.config.js"), "utf8");
    const env = JSON.parse(readFileSync(envFile, "utf8"));
    const evaluator = join(here, "../fake-convex/evaluate.mjs");
    const run = spawnSync(process.execPath, [evaluator], { input: JSON.stringify({ source, env }), encoding: "utf8" });
    const answer = JSON.parse(run.stdout || "{}");
    if (!answer.ok) {
      const why = answer.missing
        ? `Environment variable ${answer.missing} is used in auth config file but its value was not set`
        : answer.error ?? run.stderr;
      report(false, what, why);
    } else {
      const same = JSON.stringify(answer.ok.providers) === JSON.stringify(providers);
      report(same, what, same ? "" : JSON.stringify(answer.ok.providers));
    }
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
