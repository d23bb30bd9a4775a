// The reference Worker (worker/src/index.js, unchanged) broken on purpose, one breakage per
// `wrangler dev` (the BREAK var), as shared/reviews/2026-12-04-real-runtime.md section 3 broke it.
// BREAK unset: the reference Worker as it is. Only the default export: workerd takes every named
// export as an entrypoint.
import reference from "../../worker/src/index.js";

const JSON_HEADERS = { "content-type": "application/json; charset=utf-8" };

// A D1 binding whose every statement reads a table that does not exist: a real D1 error.
function brokenDb(db) {
  return { prepare: () => db.prepare("SELECT result FROM no_such_table"), batch: db.batch.bind(db), exec: db.exec.bind(db) };
}

export default {
  async fetch(request, env, ctx) {
    const mode = env.BREAK ?? "none";
    if (new URL(request.url).pathname === "/api/health") {
      if (mode === "health500") {
        // A 500 whose body still looks healthy.
        const good = await reference.fetch(request, env, ctx);
        return new Response(await good.text(), { status: 500, headers: JSON_HEADERS });
      }
      if (mode === "health200-dberror") {
        return new Response(JSON.stringify({ status: "ok", version: env.CF_VERSION_METADATA?.id,
                                             database: { status: "error", error: "x" } }),
                            { status: 200, headers: JSON_HEADERS });
      }
      if (mode === "health200-textok") return new Response("OK", { status: 200 });
      if (mode === "throw") throw new Error("boom from variant.js");
      if (mode === "slow") await new Promise((resolve) => setTimeout(resolve, 15000));
    }
    if (mode === "d1fail") return reference.fetch(request, { ...env, DB: brokenDb(env.DB) }, ctx);
    if (mode === "nodb") {
      const { DB, ...rest } = env;
      return reference.fetch(request, rest, ctx);
    }
    return reference.fetch(request, env, ctx);
  },
};
