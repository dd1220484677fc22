// Module-resolution hook (registered by ./setup.mjs): resolves
// `@stratasync/y-doc/types` onto `@stratasync/y-doc/dist/types.js` when the
// installed y-doc does not export that subpath (0.5.1 exports only ".").
const SUBPATH = "@stratasync/y-doc/types";

export async function resolve(specifier, context, nextResolve) {
  if (specifier !== SUBPATH) {
    return nextResolve(specifier, context);
  }
  try {
    return await nextResolve(specifier, context);
  } catch (error) {
    if (error?.code !== "ERR_PACKAGE_PATH_NOT_EXPORTED") {
      throw error;
    }
    const root = await nextResolve("@stratasync/y-doc", context);
    // root.url is .../@stratasync/y-doc/dist/index.js
    return { ...root, url: new URL("./types.js", root.url).href, shortCircuit: true };
  }
}
