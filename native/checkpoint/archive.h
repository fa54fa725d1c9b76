// Reading and writing `.pth` files in both layouts torch.save has produced (see the pth-formats notes in
// the project docs): the zip layout of torch >= 1.6 and the legacy layout of torch < 1.6.
#pragma once

#include "checkpoint/pickle.h"

#include <string>

namespace spurmem {

enum class PthFormat { Zip, Legacy };

struct Checkpoint {
  PthFormat format = PthFormat::Zip;
  std::string path;
  ValuePtr root;
  size_t storageBytes = 0;  // bytes of tensor data held (what the JS garbage collector is told)
};

/// Reads a checkpoint without executing anything in it. Every tensor lands on the CPU.
/// In the zip layout the CRC-32 of every entry is checked; `checkStorageCrc = false` leaves out the
/// tensor data's entries (torch.load checks none; the CRC pass is ~20% of the load time on one core).
/// Throws CheckpointError naming `path` and what was wrong (missing, truncated, corrupt, refused global).
Checkpoint readCheckpoint(const std::string& path, bool checkStorageCrc = true);

/// Writes `root` in the zip layout (torch >= 1.6), loadable by `torch.load(path, weights_only=True)`.
/// The bytes go to a temporary file in the same folder, are flushed to disk, and are renamed over `path`.
void writeCheckpoint(const std::string& path, const ValuePtr& root);

const char* formatName(PthFormat f);

}  // namespace spurmem
