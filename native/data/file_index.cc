#include "file_index.h"

#include <dirent.h>
#include <sys/stat.h>

namespace spurmem {
namespace {

/// The names of the entries of `dir` that are not folders (empty when it cannot be read).
std::unordered_set<std::string> filesIn(const std::string& dir) {
  std::unordered_set<std::string> names;
  DIR* d = opendir(dir.c_str());
  if (!d) return names;
  while (const dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    bool folder = e->d_type == DT_DIR;
    if (e->d_type == DT_UNKNOWN) {
      struct stat st;
      folder = lstat((dir + "/" + name).c_str(), &st) == 0 && S_ISDIR(st.st_mode);
    }
    if (!folder) names.insert(name);
  }
  closedir(d);
  return names;
}

}  // namespace

FolderListing listFolders(const std::vector<std::string>& dirs) {
  FolderListing out;
  for (const auto& d : dirs)
    if (!out.count(d)) out.emplace(d, filesIn(d));
  return out;
}

std::vector<uint8_t> presentFiles(const std::vector<std::string>& paths, const FolderListing& listed) {
  FolderListing folders;
  std::vector<uint8_t> out(paths.size(), 0);
  for (std::size_t i = 0; i < paths.size(); ++i) {
    const std::string& p = paths[i];
    const auto cut = p.rfind('/');
    if (cut == std::string::npos || cut + 1 == p.size()) continue;
    const std::string dir = cut == 0 ? "/" : p.substr(0, cut);
    auto it = listed.find(dir);
    if (it == listed.end()) {
      it = folders.find(dir);
      if (it == folders.end()) it = folders.emplace(dir, filesIn(dir)).first;
    }
    out[i] = it->second.count(p.substr(cut + 1)) ? 1 : 0;
  }
  return out;
}

}  // namespace spurmem
