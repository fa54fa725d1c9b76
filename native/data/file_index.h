// Which image files of a dataset exist (src/data/dataset.ts, buildSamples): plain C++, no Node-API and no
// libtorch.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace spurmem {

/// Names of the entries that are not folders, per folder read (see presentFiles).
using FolderListing = std::unordered_map<std::string, std::unordered_set<std::string>>;

/// Reads the given folders (each as presentFiles reads one): a listing made ahead, while other work runs.
FolderListing listFolders(const std::vector<std::string>& dirs);

/**
 * For each absolute path, 1 when its folder lists an entry of that name that is not a folder (a file, or
 * a link to anything: as readdir's entry type says; an entry of unknown type is lstat'ed), else 0. Each
 * folder is read once, however many paths name it, and folders in `listed` are not read again; a folder
 * that cannot be read holds nothing. The last '/' splits a path into folder and name; a path without one
 * (the empty path too) names no file.
 */
std::vector<uint8_t> presentFiles(const std::vector<std::string>& paths, const FolderListing& listed = {});

}  // namespace spurmem
