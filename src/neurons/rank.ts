/**
 * Neuron (channel) rankings of the paper's Part I (original-behaviour §4).
 *
 * A "neuron" is one output channel of a conv weight `[c, :, :, :]` or one output row of a linear weight.
 */
import type { ModelInfo, ParamInfo } from '../native.js';
import { FAMILIES } from '../model/architectures.js';
import { SpurmemError } from '../util/errors.js';

/** How critical neurons are chosen (see RANKINGS). */
export type Ranking = 'largest' | 'activated' | 'threshold';

/** A chosen channel: parameter name, output-channel index, and its score (weight or gradient L2 norm). */
export interface Channel {
  name: string;
  index: number;
  value: number;
}

/**
 * The parameters a ranking looks at, in registration order (the order the original walks them):
 * - `largest` (§4.1): ResNet parameters whose name contains none of `bn`, `downsample`, `fc` — the main
 *   conv weights (49 for ResNet-50), downsample convs excluded as in the original;
 * - `activated` (§4.2, Q9/Q10): every 4-D conv weight, downsample convs included;
 * - `threshold` (§4.3): every conv weight (the original's PrunedConv2d set, 53 for ResNet-50).
 * For a ViT every ranking uses the output rows of blocks.<i>.{attn.qkv, attn.proj, mlp.fc1, mlp.fc2}.
 */
export function candidateParams(info: ModelInfo, ranking: Ranking): ParamInfo[] {
  const family = FAMILIES[info.family];
  return info.parameters.filter(ranking === 'largest' ? family.isMainNeuron : family.isNeuron);
}

/**
 * The global top-k channels by score, exactly as the original's repeated single search: walk the
 * parameters in order, a tensor replaces the best so far only if its maximum is strictly greater (ties:
 * the earlier tensor), inside a tensor the lowest index wins, the best starts at 0, and each winner is
 * set to zero before the next search. That is: sort by score (descending), then parameter order, then
 * index; keep the first k with a score above 0.
 * @param scores per parameter, one score per output channel
 * @param order parameter names in registration order
 * @throws SpurmemError when fewer than k channels have a positive score
 */
export function topChannels(scores: Record<string, Float32Array>, order: string[], k: number): Channel[] {
  const all: { p: number; index: number; value: number }[] = [];
  order.forEach((name, p) => {
    const s = scores[name];
    if (!s) throw new SpurmemError(`no scores for parameter '${name}'`);
    for (let i = 0; i < s.length; i++) if (s[i] > 0) all.push({ p, index: i, value: s[i] });
  });
  if (all.length < k) {
    throw new SpurmemError(`only ${all.length} channels have a positive score; cannot choose the top ${k}`);
  }
  all.sort((a, b) => b.value - a.value || a.p - b.p || a.index - b.index);
  return all.slice(0, k).map((c) => ({ name: order[c.p], index: c.index, value: c.value }));
}

/** The number of channels with a score above 0 among the parameters `order` (what topChannels can choose from). */
export function positiveChannels(scores: Record<string, Float32Array>, order: string[]): number {
  let n = 0;
  for (const name of order) {
    const s = scores[name];
    if (!s) throw new SpurmemError(`no scores for parameter '${name}'`);
    for (let i = 0; i < s.length; i++) if (s[i] > 0) n++;
  }
  return n;
}

/**
 * Why the gradients of one group's poorest samples cannot rank k channels (`activated`, §4.2), in words,
 * or null when they can. With the softmax head and the original's loss, a sample whose other class gets
 * probability exactly 0.0 in float32 (true-class probability 1.0, or 0.0 when it is fitted the wrong way)
 * passes no gradient through the Softmax (a memorized model reaches that on its training data); when
 * every chosen sample is so, that is named with the count of samples.
 * @param probsOfTrue the chosen samples' probabilities of their true class
 * @param positive channels with a nonzero gradient (positiveChannels)
 * @param groupSize samples of the group in the split (the chosen ones are its poorest, at most the limit)
 * @param subject who the samples belong to in the message (default `group <group>`)
 */
export function rankingProblem(o: {
  group: number;
  k: number;
  positive: number;
  probsOfTrue: ArrayLike<number>;
  groupSize: number;
  softmaxHead: boolean;
  loss: 'probabilities' | 'logits';
  subject?: string;
  /** What to try instead when the softmax head passes no gradient (default: --activated-loss logits). */
  remedy?: string;
}): string | null {
  if (o.positive >= o.k) return null;
  const who = o.subject ?? `group ${o.group}`;
  const n = o.probsOfTrue.length;
  const samples = (x: number) => `${x} sample${x === 1 ? '' : 's'}`;
  const all = n === 1 ? (o.groupSize === 1 ? 'its only sample' : `its poorest sample (of ${o.groupSize})`) : n === o.groupSize ? `all ${samples(n)}` : `all ${n} poorest samples (of ${o.groupSize})`;
  const verb = n === 1 ? { is: 'is', has: 'has' } : { is: 'are', has: 'have' };
  let ones = 0;
  let zeros = 0;
  for (let i = 0; i < n; i++) {
    if (o.probsOfTrue[i] === 1) ones++;
    else if (o.probsOfTrue[i] === 0) zeros++;
  }
  const hint = o.softmaxHead && o.loss === 'probabilities' ? ` (${o.remedy ?? '--activated-loss logits ranks them'})` : '';
  const poorest = n === 1 ? 'its poorest sample' : `its ${n} poorest samples`;
  if (o.positive === 0) {
    if (o.softmaxHead && o.loss === 'probabilities' && ones + zeros === n) {
      const how =
        zeros === 0
          ? `${verb.is} fitted with probability 1.0`
          : ones === 0
            ? `${verb.has} probability 0.0 for ${n === 1 ? 'its' : 'their'} true class`
            : `have probability exactly 1.0 (${ones}) or 0.0 (${zeros}) for their true class`;
      return `${who}: ${all} ${how}; the softmax head passes no gradient${hint}`;
    }
    return `${who}: the gradients of ${poorest} are all zero${hint}`;
  }
  return `${who}: only ${o.positive} channel${o.positive === 1 ? ' has' : 's have'} a nonzero gradient on ${poorest}; cannot choose the top ${o.k}`;
}

/**
 * The "poorest performing" samples of one group (§4.2, get_poorest_performing_samples_as_dataloader):
 * the samples of group g sorted by the predicted probability of their true class, lowest first (stable),
 * at most `limit` (200) of them.
 * @param probs per sample of the split, the probability of each class [n * numClasses]
 * @returns positions within the split
 */
export function poorestSamples(
  groups: ArrayLike<number>,
  trueClass: ArrayLike<number>,
  probs: Float32Array,
  numClasses: number,
  group: number,
  limit = 200,
): number[] {
  const idx: number[] = [];
  for (let i = 0; i < groups.length; i++) if (groups[i] === group) idx.push(i);
  const p = (i: number) => probs[i * numClasses + trueClass[i]];
  idx.sort((a, b) => p(a) - p(b) || a - b);
  return idx.slice(0, limit);
}

/** Softmax over each row of `outputs` [n * c] (for a linear head; the softmax head outputs are already probabilities). */
export function softmaxRows(outputs: Float32Array, c: number): Float32Array {
  const out = new Float32Array(outputs.length);
  for (let i = 0; i < outputs.length; i += c) {
    let m = -Infinity;
    for (let j = 0; j < c; j++) m = Math.max(m, outputs[i + j]);
    let s = 0;
    for (let j = 0; j < c; j++) s += Math.exp(outputs[i + j] - m);
    for (let j = 0; j < c; j++) out[i + j] = Math.exp(outputs[i + j] - m) / s;
  }
  return out;
}

export { ceilCount } from '../model/counts.js';

/**
 * The parameters finetune-prune may mask and the threshold ranking pools: every conv weight of a ResNet
 * (the original's PrunedConv2d set, 53 for ResNet-50), qkv/proj/fc1/fc2 of a ViT.
 */
export function prunableNames(info: ModelInfo): string[] {
  return candidateParams(info, 'threshold').map((p) => p.name);
}
