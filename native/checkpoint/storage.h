// Reading a checkpoint's tensor storages: one memory block for all of them (huge pages, reused between
// checkpoints), filled by up to 8 threads straight from the file, with their zip entries' CRC-32 checked.
#pragma once

#include "checkpoint/input_file.h"

#include <torch/torch.h>

#include <string>
#include <vector>

namespace spurmem {

/// Storage bytes to read from the file into a new tensor; in the zip layout the whole entry's CRC-32
/// is checked as well (`crc`, over `entrySize` bytes of which the first `nbytes` are the storage's).
struct StorageCopy {
  std::string name;
  uint64_t offset = 0;  // in the file
  size_t nbytes = 0;
  bool checkCrc = false;
  uint32_t crc = 0;
  size_t entrySize = 0;
  torch::Tensor* dst = nullptr;
};

/// Allocates every storage and reads its bytes straight into it (into *dst), checking CRC-32s. Throws
/// CheckpointError naming `path` and the entry on a CRC mismatch or a short read.
void copyStorages(const InputFile& f, std::vector<StorageCopy>& copies, const std::string& path);

}  // namespace spurmem
