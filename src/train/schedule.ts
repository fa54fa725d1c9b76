/**
 * Learning-rate schedules stepped once per epoch, with state that a checkpoint can carry (resume).
 */

/** Saved state of a scheduler (stored in the checkpoint's `spurmem.scheduler`). */
export interface SchedulerState {
  kind: 'plateau' | 'cosine' | 'none';
  lr: number;
  best?: number | null;
  badEpochs?: number;
  cooldown?: number;
  epoch?: number;
}

export interface Scheduler {
  /** Current learning rate. */
  readonly lr: number;
  /** Ends an epoch; `metric` is the epoch's summed training loss. Returns the learning rate for the next epoch. */
  step(metric: number): number;
  state(): SchedulerState;
}

/**
 * torch.optim.lr_scheduler.ReduceLROnPlateau(mode='min', factor, patience, threshold=1e-4,
 * threshold_mode='rel', cooldown=0, min_lr=0, eps=1e-8): the original steps it once per epoch with the
 * epoch's summed loss (§3.1: factor 0.5, patience 3; §6: patience 1).
 */
export class ReduceLROnPlateau implements Scheduler {
  lr: number;
  private best: number | null = null;
  private badEpochs = 0;
  private cooldownLeft = 0;
  constructor(
    lr: number,
    readonly factor = 0.5,
    readonly patience = 3,
    readonly threshold = 1e-4,
    readonly cooldown = 0,
    readonly minLr = 0,
    readonly eps = 1e-8,
  ) {
    this.lr = lr;
  }
  step(metric: number): number {
    const better = this.best === null || metric < this.best * (1 - this.threshold);
    if (better) {
      this.best = metric;
      this.badEpochs = 0;
    } else {
      this.badEpochs += 1;
    }
    if (this.cooldownLeft > 0) {
      this.cooldownLeft -= 1;
      this.badEpochs = 0;
    }
    if (this.badEpochs > this.patience) {
      const next = Math.max(this.lr * this.factor, this.minLr);
      if (this.lr - next > this.eps) this.lr = next;
      this.cooldownLeft = this.cooldown;
      this.badEpochs = 0;
    }
    return this.lr;
  }
  state(): SchedulerState {
    return { kind: 'plateau', lr: this.lr, best: this.best, badEpochs: this.badEpochs, cooldown: this.cooldownLeft };
  }
  load(s: SchedulerState): void {
    this.lr = s.lr;
    this.best = s.best ?? null;
    this.badEpochs = s.badEpochs ?? 0;
    this.cooldownLeft = s.cooldown ?? 0;
  }
}

/** torch.optim.lr_scheduler.CosineAnnealingLR(T_max = epochs, eta_min = 0), stepped per epoch. */
export class CosineAnnealing implements Scheduler {
  lr: number;
  private epoch = 0;
  constructor(readonly baseLr: number, readonly tMax: number, readonly etaMin = 0) {
    this.lr = baseLr;
  }
  step(): number {
    this.epoch += 1;
    this.lr = this.etaMin + ((this.baseLr - this.etaMin) * (1 + Math.cos((Math.PI * this.epoch) / this.tMax))) / 2;
    return this.lr;
  }
  state(): SchedulerState {
    return { kind: 'cosine', lr: this.lr, epoch: this.epoch };
  }
  load(s: SchedulerState): void {
    this.epoch = s.epoch ?? 0;
    this.lr = s.lr;
  }
}

/** A constant learning rate. */
export class ConstantLr implements Scheduler {
  constructor(readonly lr: number) {}
  step(): number {
    return this.lr;
  }
  state(): SchedulerState {
    return { kind: 'none', lr: this.lr };
  }
}

/** Builds the scheduler named by `kind`, restoring `saved` when resuming. */
export function makeScheduler(
  kind: 'plateau' | 'cosine' | 'none',
  lr: number,
  o: { epochs: number; patience?: number; factor?: number },
  saved?: SchedulerState,
): Scheduler {
  if (kind === 'plateau') {
    const s = new ReduceLROnPlateau(lr, o.factor ?? 0.5, o.patience ?? 3);
    if (saved?.kind === 'plateau') s.load(saved);
    return s;
  }
  if (kind === 'cosine') {
    const s = new CosineAnnealing(lr, o.epochs);
    if (saved?.kind === 'cosine') s.load(saved);
    return s;
  }
  return new ConstantLr(saved?.lr ?? lr);
}
