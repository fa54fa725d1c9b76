/**
 * The ranking step of a study: which channels (or, for threshold, which weights) each block modifies
 * (original-behaviour §4): `largest` one block of the top-k channels by weight L2 norm; `activated` one
 * block per source group, by gradient norm on the group's poorest samples (a group that cannot rank is
 * a skipped block); `threshold` one block whose weights the native selection picks per repeat.
 */
import { targetIndex } from '../../metrics/groups.js';
import type { ModelInfo as NativeModelInfo } from '../../native.js';
import { SpurmemError } from '../../util/errors.js';
import { candidateParams, poorestSamples, positiveChannels, rankingProblem, softmaxRows, topChannels, type Channel } from '../rank.js';
import { batchOf, type StudyContext } from './context.js';
import type { ResolvedStudySetting } from './settings.js';

/** One block to run: its source group (activated), its channels, or why it is skipped. */
export interface BlockPlan {
  source: number | null;
  channels: Channel[];
  skipped?: string;
  /** `activated`: the split positions of the poorest samples whose gradients ranked the channels. */
  poorest?: number[];
}

/**
 * The blocks of a setting on a split, from the unmodified outputs of that split.
 * @throws SpurmemError when `activated` cannot rank channels for any group
 */
export async function planBlocks(
  ctx: StudyContext,
  s: ResolvedStudySetting,
  info: NativeModelInfo,
  unmodifiedOutputs: Float32Array,
  o: { quiet?: boolean; log: (line: string) => void },
): Promise<BlockPlan[]> {
  const { model } = ctx;
  const split = s.split;
  const plans: BlockPlan[] = [];
  if (s.ranking === 'largest') {
    const cands = candidateParams(info, 'largest').map((p) => p.name);
    plans.push({ source: null, channels: topChannels(model.channelNorms(cands), cands, s.topK) });
  } else if (s.ranking === 'activated') {
    // each source group is its own block; one that cannot rank is reported and the others run
    const samples = ctx.ds.samples[split];
    const numClasses = info.numClasses;
    const cands = candidateParams(info, 'activated').map((p) => p.name);
    const probs = info.head === 'softmax' ? unmodifiedOutputs : softmaxRows(unmodifiedOutputs, numClasses);
    const groups = samples.map((x) => x.group);
    const trueClass = samples.map((x) => targetIndex(x.y, ctx.labelOrder));
    for (let g = 0; g < ctx.ds.groupNames.length; g++) {
      const pos = poorestSamples(groups, trueClass, probs, numClasses, g, s.poorestLimit);
      if (pos.length === 0) {
        plans.push({ source: g, channels: [], skipped: `group ${g}: no samples in the ${split} split` });
        continue;
      }
      const key = `${split}|${s.activatedLoss}|${cands.join(',')}|${pos.join(',')}`;
      let grads = ctx.gradientCache.get(key);
      if (!grads) {
        const chosen = pos.map((i) => samples[i]);
        const b = await batchOf(ctx, chosen);
        const targets = Int32Array.from(b.samples, (x) => targetIndex(x.y, ctx.labelOrder));
        const { scaleLog2, norms } = await model.gradients({ images: b.images, shape: b.shape }, { targets, names: cands, train: false, loss: s.activatedLoss });
        grads = { scaleLog2, norms };
        ctx.gradientCache.set(key, grads);
      }
      const problem = rankingProblem({
        group: g,
        k: s.topK,
        positive: positiveChannels(grads.norms, cands),
        probsOfTrue: pos.map((i) => probs[i * numClasses + trueClass[i]]),
        groupSize: groups.filter((x) => x === g).length,
        softmaxHead: info.head === 'softmax',
        loss: s.activatedLoss,
      });
      if (problem) {
        plans.push({ source: g, channels: [], skipped: problem });
        continue;
      }
      // the logits loss may scale its gradients by 2^scaleLog2 against underflow: report true norms
      const unscale = 2 ** -grads.scaleLog2;
      plans.push({ source: g, channels: topChannels(grads.norms, cands, s.topK).map((c) => ({ ...c, value: c.value * unscale })), poorest: pos });
    }
    const skipped = plans.filter((p) => p.skipped);
    if (skipped.length === plans.length) {
      throw new SpurmemError(`--ranking activated could not rank channels for any group on the ${split} split:\n  ${skipped.map((p) => p.skipped).join('\n  ')}`);
    }
    if (!o.quiet) for (const p of skipped) o.log(`warning: ${p.skipped}: block skipped`);
  } else {
    plans.push({ source: null, channels: [] });
  }
  return plans;
}
