// The page's Chinese findings, composed from the check id, its status and the facts the page's own
// checks recorded: the same wording and terms as verifier/wording.py (one term per concept: 验证通过,
// 未通过, 不得用于诉讼, 取证, 封存, 可信时间戳, 证据指纹, 锚定). The English reason stays as the check wrote it.

import { formatDuration, formatTime } from "./courttime.js";

export const FAILURE_MEANING_ZH = {
  S1: "清单并非由其所列运营方签署，或签署后被改动",
  S2: "取证并非由中立第三方为他人进行",
  S3: "所记录的网络事实不能支持网页来自所列主机",
  S4: "取证环境记录不足，不能表明取证在清洁环境中自动完成",
  P1: "调用日志断裂或顺序错乱，取证过程无法逐步显示",
  P2: "截图、网页源码与网页存档不能相互印证",
  P3: "证据包生成后有文件被增加或删除",
  H1: "有证据文件并非封存时的文件，已被改动或替换",
  H2: "清单并非封存时的清单，已被改动",
  H3: "本证据不属于其声称的封存批次",
  H4: "没有有效的可信时间戳覆盖该批次，存在时间未获证明",
  H5: "区块链锚定不成立，批次根哈希未出现在预期的链上",
  T1: "取证时间、可信时间戳时间与区块时间相互矛盾",
  T2: "取证与封存之间间隔过长，不能认为内容在取证时即已固定",
  L1: "所披露的事件并非日志记录时的事件：已被改动、移位或从未记入日志",
  L2: "日志被改写：该检查点不是已锚定检查点的前缀",
  L3: "检查点并非由运营方密钥签署",
  L4: "统计数据不能由所披露的事件复算得出",
  N1: "回复的 DKIM 签名不成立：回复已被改动，或并非来自其所称的域名",
  N2: "封存的通知记录或 PDF 与实际发出的邮件所附内容不一致",
  V1: "所录直播流与日志所记的播出内容不符：有片段被改动、调换顺序或无记录地缺失，或片段时长之和与声称的时长不符",
};

const WARN_ZH = {
  S3: "服务器地址与域名解析相符，但传输未受 TLS 完整保护（明文 HTTP，或取证主机不信任其证书链）",
  S4: "取证环境记录中有未显示为清洁或无法确认的项目",
  P2: "截图、网页源码与网页存档相互印证，但浏览器与原始请求最终到达的网址不同",
  H5: "锚定交易载有批次根哈希（已离线证明）；该区块是否位于主链上尚未核对，可输入 RPC 地址在线核对",
  T1: "取证结束时间与可信时间戳时间先后相符（在容差之内）；没有已核验的区块时间可供比较",
  N1: "回复按收到时原样封存，但没有 DKIM 签名，或签名域名与发件人域名不符，不能据此确认其来自平台域名",
  N2: "发出的通知缺少所选规则要求的要件，见英文原因中逐项所列",
};

// What a check lacks when it cannot judge for want of trust, named in Chinese.
const LACKING_ZH = { S1: "签署清单的运营方公钥", H4: "签发时间戳的时间戳服务根证书", H5: "锚定所在的区块链", L3: "签署日志检查点的运营方公钥" };

const get = (facts, ...path) => path.reduce((v, k) => (v !== null && typeof v === "object" && k in v ? v[k] : undefined), facts);

function earliestStamp(facts) {
  const stamps = facts.timestamps;
  if (!Array.isArray(stamps) || !stamps.length) return null;
  return stamps.reduce((a, b) => (String(b.gen_time) < String(a.gen_time) ? b : a));
}

const PASS_ZH = {
  S1: (f) => {
    const operator = get(f, "operator", "name");
    return operator ? `清单由受信任的运营方“${operator}”签署，签名有效` : "清单由受信任的运营方签署，签名有效";
  },
  S2: (f) => {
    const requester = get(f, "requester", "tenant");
    const who = requester ? `运营方受申请人“${requester}”委托取证，` : "";
    const qualifications = get(f, "operator_qualifications", "declared")
      ? "运营方声明的资质（备案、认证）为其自述，软件无法核验" : "运营方未声明资质（备案、认证）";
    return `${who}运营方与申请人不同，为中立第三方；${qualifications}`;
  },
  S3: () => "服务器地址在该域名的 DNS 解析结果之中，TLS 证书链覆盖该域名且取证时有效",
  S4: (f) => {
    const browser = get(f, "environment", "browser");
    return `取证环境已记录且显示清洁：${browser ? `${browser}，` : ""}各工具的版本与哈希值、全新浏览器配置，除取证工具自身的记录代理外无其他代理`;
  },
  P1: () => "调用日志以哈希链相连，时间先后有序，每一步均自动执行",
  P2: (f) => `截图、网页源码与网页存档指向同一网址并相互印证；每个文件的哈希值均在生成时记入日志${f.session_video ? "；录屏视频时长覆盖其记录的各步骤" : ""}`,
  P3: () => "证据包中的文件与清单所列一致，无缺失、无多余",
  H1: () => "每个证据文件的 SHA-256 哈希值和大小均与清单一致",
  H2: () => "由清单重新计算的证据指纹与封存时的叶子值一致",
  H3: (f) => {
    const index = get(f, "batch", "leaf_index"), size = get(f, "batch", "tree_size");
    return Number.isInteger(index) && Number.isInteger(size)
      ? `本证据是封存批次 ${size} 个叶子中的第 ${index + 1} 个，其包含证明可推导出批次根哈希`
      : "本证据的包含证明可推导出封存批次的根哈希";
  },
  H4: (f) => {
    const stamp = earliestStamp(f);
    return stamp
      ? `时间戳服务“${stamp.trusted_as || stamp.tsa}”签发的可信时间戳有效，时间 ${formatTime(stamp.gen_time)}`
      : "可信时间戳有效，并链接到受信任的时间戳服务根证书";
  },
  H5: (f) => {
    const block = get(f, "anchor", "block_number"), confirmations = get(f, "anchor", "confirmations");
    const chain = get(f, "anchor", "chain") || get(f, "anchor", "chain_id");
    const where = `锚定交易位于链“${chain}”第 ${block} 号区块，载有批次根哈希`;
    return confirmations !== undefined && confirmations !== null ? `${where}，已获 ${confirmations} 个确认` : where;
  },
  T1: (f, offline) => (offline
    ? "取证结束时间与可信时间戳时间先后相符（在容差之内）；区块时间为锚定记录的声明，离线未核对"
    : "取证结束时间、可信时间戳时间与区块时间先后相符（在容差之内）"),
  T2: (f, offline) => {
    const gap = f.prechain_gap_seconds;
    const until = offline ? "可信时间戳" : "上链";
    return typeof gap === "number" && Number.isFinite(gap)
      ? `取证结束后 ${formatDuration(Math.max(gap, 0), "zh")}即由${until}固定，在政策时限之内`
      : `取证结束后在政策时限之内由${until}固定`;
  },
  L1: (f) => `所披露的 ${get(f, "log", "events")} 个事件均包含在规模为 ${get(f, "log", "checkpoint_size")} 的日志检查点中；未披露字段仅以加盐哈希值出现`,
  L2: () => "该检查点与已锚定的检查点一致（RFC 9162 一致性证明），此前记录的事件未被删除或改写",
  L3: () => "两个检查点的签名（C2SP signed-note，Ed25519）均由受信任的运营方密钥验证通过",
  L4: () => "导出所附的统计表均可由所披露的事件复算得出",
  N1: (f) => {
    const domain = get(f, "reply_provenance", "domain");
    return domain ? `回复的 DKIM 签名有效，签名域名为 ${domain}，已依导入时封存的 DNS 密钥记录离线核验` : "回复的 DKIM 签名有效，已依导入时封存的 DNS 密钥记录离线核验";
  },
  N2: () => "发出的通知具备所选规则要求的全部要件",
  V1: (f) => `直播流的 ${get(f, "stream", "segments")} 个片段（序号 ${get(f, "stream", "first")}–${get(f, "stream", "last")}）均在到达时以哈希值记入哈希链日志，与网页存档中的片段逐字节一致；媒体序号连续无缺口，片段时长之和与声称的时长一致`,
};

/**
 * The Chinese finding of one check. `kind` is the manifest's kind ("upload" or a capture),
 * `missingTrust` whether it could not judge for want of trust, `sealed` whether the package has a proof.
 */
export function composeZh(checkId, status, facts, { kind = "web-capture", offline = true, missingTrust = false,
  sealed = true, unusable = false } = {}) {
  if (unusable) return "输入无法检验，未进行此项检查";
  if (status === "fail") return FAILURE_MEANING_ZH[checkId]; // the status says 未通过; this says what it means
  if (status === "pass") return PASS_ZH[checkId](facts, offline);
  if (status === "warn") {
    if (checkId === "S4" && kind === "upload") return "文件由申请人上传，并非平台抓取，因此没有取证环境记录";
    if (checkId === "S4" && kind === "log-export") return "事件由申请人的系统发送至日志，并非平台抓取，因此没有取证环境记录";
    if (checkId === "S4" && kind === "notice-reply") return "回复由申请人导入，并非平台直接接收；其来源由 N1 核验";
    if (checkId === "V1") {
      return "直播流片段均在到达时记入日志，与网页存档逐字节一致，时长相符；但录制中存在缺口（已由录制程序记录，缺失的序号范围见英文原因），或个别片段哈希值记入日志晚于一秒";
    }
    const unclean = get(facts, "environment", "clean_check", "unclean_or_unknown");
    if (checkId === "S4" && Array.isArray(unclean) && unclean.length) {
      return `取证环境记录中有 ${unclean.length} 项未显示为清洁或无法确认，需逐项审查（见英文原因）`;
    }
    return WARN_ZH[checkId] ?? "有需要注意的情况，见英文原因";
  }
  if (missingTrust) return `无法判断：所给信任配置中缺少${LACKING_ZH[checkId] ?? "本项检查所需的信任材料"}`;
  if (kind === "upload" && ["S3", "P1", "P2"].includes(checkId)) return "文件由申请人上传，并非平台抓取，因此没有此项记录";
  if (kind === "stream" && checkId === "S3") return "直播流录制未单独记录网络事实；每个片段的服务器地址见网页存档记录（WARC-IP-Address）";
  if (kind === "log-export" && ["S3", "P1", "P2"].includes(checkId)) return "日志事件由申请人的系统发送，并非平台抓取，因此没有此项记录";
  if (checkId === "L4") return "导出未附统计数据，无需复算";
  if ((kind === "notice" || kind === "notice-reply") && ["S3", "S4", "P1", "P2"].includes(checkId)) return "通知及回复为封存的电子邮件，并非网页取证，因此没有此项记录";
  if (!sealed) return "证据包尚未封存（没有 proof/proof.json），无法检查";
  return "现有数据不足以进行此项检查";
}

/** A development-trust flag of the page's checks (`ctx.flagDevelopment`), in Chinese; an unknown one as it is. */
const DEVELOPMENT_ZH = [
  [/^operator key '(.*)' is a development key$/s, (m) => `运营方密钥“${m[1]}”为开发用密钥`],
  [/^TSA '(.*)' is a development TSA$/s, (m) => `时间戳服务“${m[1]}”为开发用时间戳服务`],
  [/^chain '(.*)' \((\d+)\) is a development chain$/s, (m) => `区块链“${m[1]}”（链 ID ${m[2]}）为开发用链`],
];
export function developmentZh(item) {
  for (const [pattern, text] of DEVELOPMENT_ZH) {
    const match = pattern.exec(item);
    if (match) return text(match);
  }
  return item;
}
