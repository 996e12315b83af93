// The engine's worker imports its wasm glue as an ES module: bundle workers as ES too.
export default { worker: { format: "es" }, build: { target: "es2022" } };
