/**
 * The data layer's public API: dataset readers (Waterbirds, CelebA, folders), the original's image
 * transforms, the batch loader and its cache, the built-in Fashion-Waterbirds dataset and dataset checks.
 */
export * from './types.js';
export { openDataset, countsTable, groupCounts, PUBLISHED_COUNTS, WATERBIRDS_GROUP_NAMES, CELEBA_GROUP_NAMES, type OpenDatasetOptions } from './dataset.js';
export { readMetadataCsv, readCelebaAttrTxt, readCelebaAttrCsv, readCelebaPartition, WATERBIRDS_COLUMNS, type MetadataRow } from './metadata.js';
export {
  evalTransform,
  trainTransform,
  decodeImage,
  pilTransformImages,
  transformFiles,
  transformFilesPooled,
  backgroundDecoding,
  nativeJpegDecoder,
  type FileTransform,
  evalPlan,
  trainPlan,
  checkResizeMethod,
  RESIZE_METHODS,
  type DecodedImage,
  type TransformPlan,
  type ResizeMethod,
  randomResizedCropBox,
  evalResizeSize,
  centerCropOffset,
  imageSize,
  IMAGENET_MEAN,
  IMAGENET_STD,
  type CropBox,
} from './images.js';
export { headerInfo, pilMode, type ImageHeader } from './image-header.js';
export { ImageCache, sharedImageCache, loadBatches, epochOrder, type ImageBatch, type LoadBatchesOptions } from './loader.js';
export { makeDemoDataset, demoCounts, FASHION_MNIST_DIR, FASHION_MNIST_CLASSES, type DemoOptions, type DemoResult } from './fashion-waterbirds.js';
export { checkDataset, type CheckReport } from './check.js';
