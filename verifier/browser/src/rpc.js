// H5 online: one JSON-RPC node the user chose settles whether the anchor's block is canonical and
// confirmed. Only used when the user enters an RPC URL; the page never contacts a node on its own.

const TIMEOUT_MS = 15_000;

async function call(url, method, params) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), TIMEOUT_MS);
  try {
    const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }), signal: controller.signal,
      credentials: "omit", referrerPolicy: "no-referrer" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const body = await response.json();
    if (body.error) throw new Error(body.error.message || "RPC error");
    return body.result;
  } finally {
    clearTimeout(timer);
  }
}

export async function checkOnline(ctx, anchor, chain, where) {
  let served, block, head;
  try {
    served = Number(BigInt(await call(ctx.rpc, "eth_chainId", [])));
    block = await call(ctx.rpc, "eth_getBlockByNumber", [`0x${anchor.blockNumber.toString(16)}`, false]);
    head = Number(BigInt(await call(ctx.rpc, "eth_blockNumber", [])));
  } catch (e) {
    return ["fail", `online check requested but the RPC failed: ${e.message || e}`];
  }
  if (served !== anchor.chainId) return ["fail", `the RPC serves chain ${served}, the anchor is on chain ${anchor.chainId}`];
  const canonical = block && typeof block.hash === "string" ? block.hash.toLowerCase() : null;
  if (canonical !== anchor.blockHash) {
    return ["fail", `${where}: block ${anchor.blockNumber} on ${chain.name} is now ${canonical} (reorged out)`];
  }
  const confirmations = head - anchor.blockNumber + 1;
  ctx.facts.anchor.confirmations = confirmations;
  ctx.facts.anchor.canonical = true;
  if (confirmations < chain.confirmations) {
    return ["fail", `${where}: ${confirmations} confirmation(s), ${chain.confirmations} required on ${chain.name}`];
  }
  return ["pass", `${where} carries the root; canonical on ${chain.name} with ${confirmations} confirmations`];
}
