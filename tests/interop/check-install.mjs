// Exits 0 when node_modules holds exactly the versions package.json pins
// (dependencies and overrides), so run.sh can skip `npm install`.
import { readFileSync } from "node:fs";

const pkg = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8"));
const wanted = { ...pkg.dependencies, ...pkg.overrides };
let ok = true;
for (const [name, version] of Object.entries(wanted)) {
  let installed = null;
  try {
    installed = JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), "utf8")).version;
  } catch {
    /* missing */
  }
  if (installed !== version) {
    console.error(`${name}: want ${version}, have ${installed ?? "nothing"}`);
    ok = false;
  }
}
process.exit(ok ? 0 : 1);
