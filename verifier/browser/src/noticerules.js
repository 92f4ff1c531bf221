// What a takedown notice must contain, per rule set: the same table as the send gate's and the
// Python N2 (DESIGN's notice kind). Each rule set lists only what its article names; a malformed
// element is a missing element, never an error.

const FINGERPRINT = /^[0-9a-f]{64}$/;
const MAX_LISTED_ITEMS = 500;

export const ELEMENTS = {
  owner_name: { en: "the notifier's name", zh: "通知人的姓名（名称）" },
  owner_identity: { en: "the right owner's true identity (name and identifier)", zh: "权利人的真实身份信息（名称及证件号码）" },
  owner_contact: { en: "the right owner's contact (e-mail, telephone or address)", zh: "权利人的联系方式" },
  right_proof: { en: "proof of the right, sealed as evidence", zh: "知识产权权利证明（已封存为证据）" },
  infringing_urls: { en: "the network addresses of the infringing content", zh: "侵权内容的网络地址" },
  infringement_evidence: { en: "preliminary evidence of infringement: a sealed capture of every address", zh: "构成侵权的初步证据：每一网络地址均有已封存的取证" },
  grounds: { en: "the grounds for the measures requested", zh: "要求采取必要措施的理由" },
  authenticity_guarantee: { en: "a written guarantee that the notice is true", zh: "通知真实性的书面保证" },
};
const ORDER = Object.keys(ELEMENTS);

// The texts were checked against public copies: SPC 2014 Art. 5 (2014 text, http://cndkt.com/separate/823.html;
// the 2020 amendment deleted it), E-Commerce Law Art. 42 (http://www.hrfabao.com/falvtiao/6471765.html), the
// IP Guideline Art. 5 (http://www.zhixianglawyer.com/news_view.aspx?typeid=4&id=1137&fid=t2:4:2), Civil Code
// Art. 1195 (https://www.xing528.com/lilun/1715892.html).
export const RULE_SETS = {
  "spc-2014-art5": {
    en: "SPC Provisions on Network Infringement of Personal Rights (2014), Art. 5 (2014 text; deleted by the 2020 amendment)",
    zh: "《最高人民法院关于审理利用信息网络侵害人身权益民事纠纷案件适用法律若干问题的规定》（法释〔2014〕11号）第五条（2014年文本，2020年修正时删除）",
    requires: ["owner_name", "owner_contact", "infringing_urls", "grounds"],
  },
  "ecl-art42": {
    en: "E-Commerce Law of the PRC, Art. 42", zh: "《中华人民共和国电子商务法》第四十二条",
    requires: ["infringement_evidence"],
  },
  "ip-guideline-art5": {
    en: "SPC Guiding Opinions on IP Civil Cases Involving E-Commerce Platforms (2020), Art. 5",
    zh: "《最高人民法院关于审理涉电子商务平台知识产权民事案件的指导意见》（法发〔2020〕32号）第五条",
    requires: ["right_proof", "owner_identity", "infringing_urls", "infringement_evidence", "authenticity_guarantee"],
  },
  "civil-code-art1195": {
    en: "Civil Code of the PRC, Art. 1195 para. 1", zh: "《中华人民共和国民法典》第一千一百九十五条第一款",
    requires: ["owner_identity", "infringement_evidence"],
  },
};

const isMapping = (v) => v !== null && typeof v === "object" && !Array.isArray(v);
// Python's str.strip() removes Unicode whitespace; JS trim() the same set for these purposes.
const text = (v) => (typeof v === "string" ? v.trim() : "");
const list = (v) => (Array.isArray(v) && v.length <= MAX_LISTED_ITEMS ? v : []);
const mapping = (v) => (isMapping(v) ? v : {});
const sealedReference = (item) => isMapping(item) && Boolean(text(item.evidence_id)) && FINGERPRINT.test(text(item.fingerprint));

/** The element ids `record` (a notice record, JSON data) holds in usable form. */
export function presentElements(record) {
  const owner = mapping(record.owner), contact = mapping(owner.contact), urls = list(record.infringing);
  const guarantee = mapping(record.guarantee);
  const found = new Set();
  if (text(owner.name)) {
    found.add("owner_name");
    if (text(owner.identifier)) found.add("owner_identity");
  }
  if (["email", "phone", "address"].some((k) => text(contact[k]))) found.add("owner_contact");
  const proofs = list(record.right_proofs);
  if (proofs.length && proofs.every(sealedReference)) found.add("right_proof");
  if (urls.length && urls.every((u) => isMapping(u) && /^https?:\/\//.test(text(u.url)))) {
    found.add("infringing_urls");
    if (urls.every(sealedReference)) found.add("infringement_evidence");
  }
  if (text(record.grounds)) found.add("grounds");
  if (guarantee.given === true && text(guarantee.text)) found.add("authenticity_guarantee");
  return found;
}

/** Each named (else every) rule set's verdict on `record`: [{ id, ruleSet, present, missing }]. */
export function judge(record) {
  const chosen = list(record.rule_sets).length ? list(record.rule_sets) : Object.keys(RULE_SETS);
  const present = presentElements(record);
  return chosen.filter((id) => typeof id === "string" && Object.hasOwn(RULE_SETS, id)).map((id) => {
    const rule = RULE_SETS[id];
    return { id, rule, present: rule.requires.filter((e) => present.has(e)), missing: rule.requires.filter((e) => !present.has(e)) };
  });
}

export const elementOrder = (ids) => [...ids].sort((a, b) => ORDER.indexOf(a) - ORDER.indexOf(b));

export function toJson(result) {
  return { rule_set: result.id, title: result.rule.en, title_zh: result.rule.zh, complete: !result.missing.length,
    present: result.present, missing: result.missing, missing_en: result.missing.map((e) => ELEMENTS[e].en),
    missing_zh: result.missing.map((e) => ELEMENTS[e].zh) };
}

/** One line per incomplete rule set: its title and every element it lacks. */
export const describeMissing = (results) => results.filter((r) => r.missing.length)
  .map((r) => `${r.rule.en}: missing ${r.missing.map((e) => ELEMENTS[e].en).join("; ")}`);
