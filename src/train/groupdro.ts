/**
 * Online GroupDRO (Sagawa et al., "Distributionally Robust Neural Networks for Group Shifts", ICLR 2020,
 * Algorithm 1), with the behaviour of the loss computer of the authors' code (kohpangwei/group_DRO):
 *
 * - per batch, the mean loss of each group g (0 for a group the batch does not hold, divided by max(n, 1));
 * - the adjusted loss of g is its mean loss plus C / sqrt(n_g), n_g the group's count in the training split
 *   (the generalization adjustment; applied only when C > 0);
 * - the group weights q (uniform at the start, kept across batches and epochs) are multiplied by
 *   exp(eta * adjusted loss) and renormalised to sum 1, BEFORE the loss of the step is formed;
 * - the loss of the step is sum_g q_g * meanloss_g with the new q (no gradient through q).
 *
 * The gradient of that loss is the gradient of mean_i(w_i * CE_i) with w_i = B * q_{g_i} / n_{g_i}^batch
 * (B the batch size): so one step is the native weighted training step with those weights, after a
 * forward pass in training mode that gives the per-sample losses (BatchNorm's running statistics are put
 * back after that pass, so that they move once per batch, as in the reference).
 */
import type { ImageBatch } from '../data/index.js';
import type { Model } from '../model/index.js';
import { SpurmemError } from '../util/errors.js';

/**
 * Per-sample cross-entropy -log_softmax(outputs)[target] of rows [n, numClasses] (the outputs treated as
 * logits, as the native step does: with the original's softmax head that is the double softmax).
 */
export function perSampleCrossEntropy(outputs: Float32Array, targets: Int32Array, numClasses: number): Float64Array {
  const n = targets.length;
  if (outputs.length !== n * numClasses) throw new SpurmemError(`cross-entropy: ${outputs.length} outputs for ${n} targets of ${numClasses} classes`);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let c = 0; c < numClasses; c++) m = Math.max(m, outputs[i * numClasses + c]);
    let s = 0;
    for (let c = 0; c < numClasses; c++) s += Math.exp(outputs[i * numClasses + c] - m);
    out[i] = m + Math.log(s) - outputs[i * numClasses + targets[i]];
  }
  return out;
}

/** The state of GroupDRO's group weights, as a checkpoint records it (`spurmem.groupdro`). */
export interface GroupDroSaved {
  q: number[];
  eta: number;
  adjustment: number;
  group_counts: number[];
}

/** What one GroupDRO update gives. */
export interface GroupDroUpdate {
  /** Per-sample weights w_i = B * q_{g_i} / n_{g_i} of the batch (for the weighted training step). */
  weights: Float32Array;
  /** The robust loss sum_g q_g * groupLoss_g (with the updated q). */
  loss: number;
  /** Mean loss of each group in the batch (0 where the batch has none). */
  groupLoss: number[];
  /** Samples of each group in the batch. */
  groupCount: number[];
  /** The group weights after the update. */
  q: number[];
}

/**
 * GroupDRO's group weights q over G groups and their exponentiated-gradient update.
 * @param trainCounts n_g, the training split's count of each group (length G), for the adjustment C/sqrt(n_g)
 * @param eta step size of the weights (group_DRO's --robust_step_size, default 0.01)
 * @param adjustment C of the generalization adjustment (group_DRO's --generalization_adjustment; 0: none)
 */
export class GroupDro {
  readonly q: Float64Array;
  constructor(
    readonly trainCounts: readonly number[],
    readonly eta: number,
    readonly adjustment: number,
    saved?: GroupDroSaved,
  ) {
    const G = trainCounts.length;
    this.q = new Float64Array(G).fill(1 / G);
    if (saved) {
      if (!Array.isArray(saved.q) || saved.q.length !== G || saved.q.some((v) => typeof v !== 'number' || !Number.isFinite(v))) {
        throw new SpurmemError(`the checkpoint's groupdro.q is not ${G} finite numbers`);
      }
      this.q.set(saved.q);
    }
  }

  /**
   * Updates q from a batch's per-sample losses and groups, and returns the weights of the step.
   * @param losses per-sample losses [B]
   * @param groups group id of each sample [B], each in [0, G)
   */
  update(losses: ArrayLike<number>, groups: ArrayLike<number>): GroupDroUpdate {
    const G = this.q.length;
    const B = losses.length;
    const sum = new Float64Array(G);
    const count = new Array<number>(G).fill(0);
    for (let i = 0; i < B; i++) {
      const g = groups[i];
      if (!(g >= 0 && g < G)) throw new SpurmemError(`groupdro: group ${g} outside 0..${G - 1}`);
      sum[g] += losses[i];
      count[g] += 1;
    }
    const groupLoss = Array.from(sum, (s, g) => s / Math.max(count[g], 1));
    const adjust = this.adjustment > 0;
    let z = 0;
    for (let g = 0; g < G; g++) {
      const adjusted = groupLoss[g] + (adjust ? this.adjustment / Math.sqrt(this.trainCounts[g]) : 0);
      this.q[g] *= Math.exp(this.eta * adjusted);
      z += this.q[g];
    }
    for (let g = 0; g < G; g++) this.q[g] /= z;
    let loss = 0;
    for (let g = 0; g < G; g++) loss += this.q[g] * groupLoss[g];
    const weights = new Float32Array(B);
    for (let i = 0; i < B; i++) weights[i] = (B * this.q[groups[i]]) / count[groups[i]];
    return { weights, loss, groupLoss, groupCount: count, q: Array.from(this.q) };
  }

  /** The state a checkpoint records. */
  saved(): GroupDroSaved {
    return { q: Array.from(this.q), eta: this.eta, adjustment: this.adjustment, group_counts: [...this.trainCounts] };
  }
}

/**
 * One GroupDRO training step on `batch`: a training-mode forward for the per-sample losses (BatchNorm's
 * running statistics restored afterwards), the q update, then one weighted native step.
 * @param targets class index of each sample; `groups` its group id
 * @returns the robust loss (NaN or infinite when the native step refused a non-finite loss)
 */
export async function groupDroStep(model: Model, dro: GroupDro, batch: ImageBatch, targets: Int32Array, groups: Int32Array): Promise<{ loss: number; update: GroupDroUpdate }> {
  const info = model.info();
  const buffers = info.buffers.map((b) => b.name);
  const input = { images: batch.images, shape: batch.shape };
  let outputs: Float32Array;
  if (buffers.length > 0) outputs = await model.withSnapshot(buffers, () => model.forward(input, { train: true }));
  else outputs = await model.forward(input, { train: true });
  const update = dro.update(perSampleCrossEntropy(outputs, targets, info.numClasses), groups);
  const r = await model.trainStep(input, { targets, weights: update.weights });
  return { loss: Number.isFinite(r.loss) ? update.loss : r.loss, update };
}
