import { describe, expect, it } from 'vitest';
import { resolveTrainOptions } from '../src/train/options.js';
import { jtt } from '../src/train/jtt.js';

const base = { dataset: 'folder' as const, root: '/nonexistent', out: '/tmp/x' };

describe('baseline options', () => {
  it('train: options of another algorithm are refused, naming the flag', () => {
    expect(() => resolveTrainOptions({ ...base, droEta: 0.1 })).toThrow(/--dro-eta is a groupdro option; with --algorithm erm/);
    expect(() => resolveTrainOptions({ ...base, algorithm: 'subsample', droAdjustment: 2 })).toThrow(/--dro-adjustment is a groupdro option/);
    expect(() => resolveTrainOptions({ ...base, algorithm: 'groupdro', reweight: true })).toThrow(/--reweight .* does not combine with --algorithm groupdro/);
    expect(() => resolveTrainOptions({ ...base, subsampleRedraw: true })).toThrow(/--subsample-redraw is a subsample option/);
    expect(resolveTrainOptions({ ...base, algorithm: 'groupdro', droEta: 0.1, droAdjustment: 1 })).toMatchObject({ algorithm: 'groupdro', droEta: 0.1, droAdjustment: 1 });
    expect(resolveTrainOptions(base)).toMatchObject({ algorithm: 'erm', droEta: 0.01, droAdjustment: 0, subsampleRedraw: false });
  });
  it('jtt: both stages are plain ERM, and its own options are checked before anything runs', async () => {
    await expect(jtt({ ...base, algorithm: 'groupdro' } as never)).rejects.toThrow(/jtt trains both stages by plain ERM: 'algorithm'/);
    await expect(jtt({ ...base, upweight: 0 })).rejects.toThrow(/upweight/);
  });
});
