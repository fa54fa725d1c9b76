#include "checkpoint/archive.h"

#include "checkpoint/crc32.h"
#include "checkpoint/input_file.h"
#include "checkpoint/storage.h"

#include <map>
#include <unordered_map>

namespace spurmem {
namespace {

struct ZipEntry {
  uint64_t offset = 0;  // of the data
  uint64_t size = 0;
  uint32_t crc = 0;
};

/// The central directory of a zip file: where each entry's data lies, its size and CRC-32. Every offset
/// and size is checked against the file before it is used.
class ZipIndex {
 public:
  ZipIndex(const InputFile& f, const std::string& path) : f_(f), path_(path) {
    uint64_t n = f.size();
    if (n < 22) fail("truncated zip: no end-of-central-directory record");
    uint64_t tailStart = n > 65557 ? n - 65557 : 0;
    std::string tail = f.read(tailStart, static_cast<size_t>(n - tailStart));
    uint64_t eocd = UINT64_MAX;
    for (size_t i = tail.size() - 22 + 1; i-- > 0;) {
      if (rd(tail, i, 4) == 0x06054b50) {
        eocd = tailStart + i;
        break;
      }
    }
    if (eocd == UINT64_MAX) fail("truncated or corrupt zip: end-of-central-directory record not found");
    size_t e = static_cast<size_t>(eocd - tailStart);
    uint64_t count = rd(tail, e + 10, 2);
    uint64_t cdSize = rd(tail, e + 12, 4);
    uint64_t cdOff = rd(tail, e + 16, 4);
    if (count == 0xFFFF || cdSize == 0xFFFFFFFF || cdOff == 0xFFFFFFFF) {
      if (eocd < 20) fail("zip64 locator missing");
      std::string loc = f.read(eocd - 20, 20);
      if (rd(loc, 0, 4) != 0x07064b50) fail("zip64 locator missing");
      uint64_t z = rd(loc, 8, 8);
      if (z > n || n - z < 56) fail("zip64 end-of-central-directory record missing");
      std::string z64 = f.read(z, 56);
      if (rd(z64, 0, 4) != 0x06064b50) fail("zip64 end-of-central-directory record missing");
      count = rd(z64, 32, 8);
      cdSize = rd(z64, 40, 8);
      cdOff = rd(z64, 48, 8);
    }
    if (cdOff > n || cdSize > n - cdOff) fail("central directory lies outside the file");
    if (count > cdSize / 46) fail("central directory entry count does not fit its size");
    std::string cd = f.read(cdOff, static_cast<size_t>(cdSize));
    const uint8_t* d = reinterpret_cast<const uint8_t*>(cd.data());
    uint64_t p = 0, endCd = cdSize;
    for (uint64_t k = 0; k < count; ++k) {
      if (endCd - p < 46 || rd(d + p, 4) != 0x02014b50) fail("corrupt central directory entry " + std::to_string(k));
      uint32_t flags = static_cast<uint32_t>(rd(d + p + 8, 2));
      uint32_t method = static_cast<uint32_t>(rd(d + p + 10, 2));
      uint32_t crc = static_cast<uint32_t>(rd(d + p + 16, 4));
      uint64_t csize = rd(d + p + 20, 4), usize = rd(d + p + 24, 4);
      uint64_t nameLen = rd(d + p + 28, 2), extraLen = rd(d + p + 30, 2), commentLen = rd(d + p + 32, 2);
      uint64_t local = rd(d + p + 42, 4);
      if (endCd - p - 46 < nameLen + extraLen + commentLen) fail("central directory entry runs past its end");
      std::string name(reinterpret_cast<const char*>(d + p + 46), nameLen);
      // zip64 extra field: the 64-bit values of the fields set to 0xFFFFFFFF, in this order
      const uint8_t* ex = d + p + 46 + nameLen;
      for (uint64_t x = 0; x + 4 <= extraLen;) {
        uint64_t id = rd(ex + x, 2), len = rd(ex + x + 2, 2);
        if (x + 4 + len > extraLen) break;
        if (id == 0x0001) {
          uint64_t q = x + 4;
          auto take = [&](uint64_t& field) {
            if (field == 0xFFFFFFFF) {
              if (q + 8 > x + 4 + len) fail("short zip64 extra field for '" + name + "'");
              field = rd(ex + q, 8);
              q += 8;
            }
          };
          take(usize);
          take(csize);
          take(local);
        }
        x += 4 + len;
      }
      p += 46 + nameLen + extraLen + commentLen;
      if (flags & 1) fail("'" + name + "' is encrypted");
      if (method != 0) fail("'" + name + "' is compressed (method " + std::to_string(method) + "); PyTorch writes stored entries only");
      if (csize != usize) fail("'" + name + "' has different stored and real sizes");
      if (local > n || n - local < 30) fail("local header of '" + name + "' is missing");
      std::string lh = f.read(local, 30);
      if (rd(lh, 0, 4) != 0x04034b50) fail("local header of '" + name + "' is missing");
      uint64_t lName = rd(lh, 26, 2), lExtra = rd(lh, 28, 2);
      uint64_t dataOff = local + 30 + lName + lExtra;
      if (dataOff > n || usize > n - dataOff) fail("data of '" + name + "' lies outside the file (truncated?)");
      entries_[name] = ZipEntry{dataOff, usize, crc};
      if (order_.size() < 1000000) order_.push_back(name);
    }
  }

  [[noreturn]] void fail(const std::string& what) const { throw CheckpointError(path_ + ": " + what); }

  const ZipEntry* find(const std::string& name) const {
    auto it = entries_.find(name);
    return it == entries_.end() ? nullptr : &it->second;
  }
  const std::vector<std::string>& names() const { return order_; }

  /// Reads an entry's bytes and checks their CRC-32.
  std::string bytes(const std::string& name, const ZipEntry& e) const {
    std::string s = f_.read(e.offset, static_cast<size_t>(e.size));
    if (crc32Of(reinterpret_cast<const uint8_t*>(s.data()), s.size()) != e.crc) fail("'" + name + "' is corrupt (CRC mismatch)");
    return s;
  }

 private:
  const InputFile& f_;
  std::string path_;
  std::unordered_map<std::string, ZipEntry> entries_;
  std::vector<std::string> order_;
};

/// Points every tensor at its storage's bytes and wraps the result as a Checkpoint.
Checkpoint finish(UnpickleResult& r, PthFormat format, const std::string& path, const std::vector<StorageCopy>& copies) {
  for (auto& t : r.tensors) {
    auto& data = t.storage->data;
    if (!data.defined()) throw CheckpointError(path + ": storage '" + t.storage->key + "' has no data");
    t.value->tensor = data.as_strided(t.size, t.stride, data.storage_offset() + t.offset);
  }
  r.tensors.clear();
  Checkpoint c;
  c.format = format;
  c.path = path;
  c.root = r.root;
  for (const auto& k : copies) c.storageBytes += k.nbytes;
  return c;
}


/// The 1-D storage tensor of `s` over the bytes read into `raw`.
torch::Tensor storageTensor(const torch::Tensor& raw, const PendingStorage& s) {
  return s.numel == 0 ? torch::empty({0}, torch::TensorOptions().dtype(s.dtype)) : raw.view(s.dtype);
}

size_t storageBytes(const std::string& path, const PendingStorage& s) {
  size_t es = storageElementSize(s.dtype), nb;
  if (__builtin_mul_overflow(static_cast<size_t>(s.numel), es, &nb))
    throw CheckpointError(path + ": storage '" + s.key + "' size overflows");
  return nb;
}

Checkpoint readZip(const InputFile& f, const std::string& path, bool checkStorageCrc) {
  ZipIndex zip(f, path);
  std::string prefix;
  for (const auto& n : zip.names()) {
    auto slash = n.find('/');
    if (slash != std::string::npos && n.compare(slash, std::string::npos, "/data.pkl") == 0) {
      prefix = n.substr(0, slash + 1);
      break;
    }
  }
  if (prefix.empty()) {
    for (const auto& n : zip.names())
      if (n.size() >= 13 && n.compare(n.size() - 13, 13, "constants.pkl") == 0)
        throw CheckpointError(path + ": a TorchScript archive (torch.jit.save), not a torch.save checkpoint; save the model's state_dict() with torch.save");
    throw CheckpointError(path + ": zip file without a <folder>/data.pkl entry: not a PyTorch checkpoint");
  }
  if (const ZipEntry* bo = zip.find(prefix + "byteorder")) {
    std::string order = zip.bytes(prefix + "byteorder", *bo);
    if (order != "little") throw CheckpointError(path + ": byte order '" + order.substr(0, 64) + "' is not supported (only little-endian)");
  }
  const ZipEntry* pkl = zip.find(prefix + "data.pkl");
  std::string pb = zip.bytes(prefix + "data.pkl", *pkl);
  UnpickleResult r = unpickle(reinterpret_cast<const uint8_t*>(pb.data()), pb.size(), path + ": data.pkl");
  std::vector<StorageCopy> copies;
  std::map<std::string, torch::Tensor> raw;
  for (auto& kv : r.storages) {
    auto& s = *kv.second;
    std::string name = prefix + "data/" + s.key;
    const ZipEntry* e = zip.find(name);
    if (!e) throw CheckpointError(path + ": storage '" + s.key + "' is named in data.pkl but '" + name + "' is missing");
    size_t nb = storageBytes(path, s);
    if (e->size < nb)
      throw CheckpointError(path + ": '" + name + "' holds " + std::to_string(e->size) + " bytes, the storage needs " + std::to_string(nb));
    copies.push_back(StorageCopy{name, e->offset, nb, checkStorageCrc, e->crc, static_cast<size_t>(e->size), &raw[kv.first]});
  }
  copyStorages(f, copies, path);
  for (auto& kv : r.storages) kv.second->data = storageTensor(raw[kv.first], *kv.second);
  return finish(r, PthFormat::Zip, path, copies);
}

// The legacy layout's first pickle: LONG1 of 10 bytes holding 0x1950a86a20f9469cfc6c, then STOP.
const uint8_t kLegacyMagic[] = {0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};

/// Length of the legacy layout's magic-number pickle at the start of `d` (n bytes), or 0 when it is not
/// there. torch.save writes it with the pickle protocol it was given: a text LONG for protocol 1, else
/// PROTO 2-5, for 4 and 5 usually followed by a FRAME of the magic's 13 bytes.
size_t legacyMagicLength(const uint8_t* d, size_t n) {
  // protocol 1 (no PROTO opcode) writes the number as a text LONG
  static const char kTextMagic[] = "L119547037146038801333356L\n.";
  if (n >= sizeof kTextMagic - 1 && std::memcmp(d, kTextMagic, sizeof kTextMagic - 1) == 0) return sizeof kTextMagic - 1;
  if (n < 2 || d[0] != 0x80 || d[1] < 2 || d[1] > 5) return 0;
  size_t pos = 2;
  if (n >= pos + 9 && d[pos] == 0x95) {
    if (rd(d + pos + 1, 8) != sizeof kLegacyMagic) return 0;
    pos += 9;
  }
  if (n < pos + sizeof kLegacyMagic || std::memcmp(d + pos, kLegacyMagic, sizeof kLegacyMagic) != 0) return 0;
  return pos + sizeof kLegacyMagic;
}

/// The pickles at the start of a legacy file: protocol version, sys_info, the object, the storage keys.
struct LegacyPickles {
  UnpickleResult proto, sys, obj, keys;
  uint64_t end = 0;  // file offset after the key list
};

/// Decodes the pickles from the first `have` bytes of the file; throws CheckpointError (with
/// `truncated` set when more bytes might help).
LegacyPickles legacyPickles(const std::string& head, const std::string& path) {
  const auto* d = reinterpret_cast<const uint8_t*>(head.data());
  size_t n = head.size(), pos = legacyMagicLength(d, n);
  auto next = [&](const char* what) {
    UnpickleResult r = unpickle(d + pos, n - pos, path + ": " + what);
    pos += r.consumed;
    return r;
  };
  LegacyPickles p;
  p.proto = next("protocol version");
  p.sys = next("sys_info");
  p.obj = next("object pickle");
  p.keys = next("storage key list");
  p.end = pos;
  return p;
}

Checkpoint readLegacy(const InputFile& f, const std::string& path) {
  uint64_t n = f.size();
  // The pickles come first and are small next to the storages after them: read 1 MiB, and more only
  // when a pickle runs past what was read.
  uint64_t have = std::min<uint64_t>(n, 1u << 20);
  LegacyPickles pk;
  for (;;) {
    std::string head = f.read(0, static_cast<size_t>(have));
    try {
      pk = legacyPickles(head, path);
      break;
    } catch (const CheckpointError& e) {
      if (!e.truncated || have == n) throw;
      have = std::min<uint64_t>(n, have * 4);
    }
  }
  if (pk.proto.root->kind != Kind::Int || pk.proto.root->i != 1001)
    throw CheckpointError(path + ": legacy protocol version is not 1001");
  if (pk.sys.root->kind == Kind::Dict) {
    auto le = pk.sys.root->get("little_endian");
    if (le && le->kind == Kind::Bool && !le->b) throw CheckpointError(path + ": big-endian checkpoints are not supported");
  }
  UnpickleResult& obj = pk.obj;
  const ValuePtr& keys = pk.keys.root;
  if (keys->kind != Kind::List && keys->kind != Kind::Tuple)
    throw CheckpointError(path + ": storage key list is not a list");
  std::vector<StorageCopy> copies;
  std::map<std::string, torch::Tensor> raw;
  uint64_t pos = pk.end;
  for (const auto& k : keys->items) {
    if (k->kind != Kind::String) throw CheckpointError(path + ": storage key is not a string");
    if (raw.count(k->s)) throw CheckpointError(path + ": storage '" + k->s + "' appears twice in the key list");
    auto it = obj.storages.find(k->s);
    if (it == obj.storages.end() || it->second->hasView)
      throw CheckpointError(path + ": storage '" + k->s + "' in the key list is not used by the object");
    auto& s = *it->second;
    if (n - pos < 8) throw CheckpointError(path + ": truncated before the data of storage '" + s.key + "'");
    uint8_t countBytes[8];
    f.read(pos, countBytes, 8);
    int64_t count = static_cast<int64_t>(rd(countBytes, 8));
    pos += 8;
    if (count != s.numel)
      throw CheckpointError(path + ": storage '" + s.key + "' holds " + std::to_string(count) + " elements, data.pkl says " + std::to_string(s.numel));
    size_t nb = storageBytes(path, s);
    if (n - pos < nb)
      throw CheckpointError(path + ": truncated in the data of storage '" + s.key + "' (" + std::to_string(nb) + " bytes needed, " + std::to_string(n - pos) + " left)");
    copies.push_back(StorageCopy{s.key, pos, nb, false, 0, nb, &raw[s.key]});
    pos += nb;
  }
  copyStorages(f, copies, path);
  for (auto& kv : raw) obj.storages.at(kv.first)->data = storageTensor(kv.second, *obj.storages.at(kv.first));
  for (auto& kv : obj.storages) {
    auto& s = *kv.second;
    if (!s.hasView) continue;
    auto base = obj.storages.find(s.viewOf);
    if (base == obj.storages.end() || !base->second->data.defined())
      throw CheckpointError(path + ": storage view '" + s.key + "' of a missing storage");
    s.data = base->second->data.narrow(0, s.viewOffset, s.numel);
  }
  for (auto& kv : obj.storages)
    if (!kv.second->data.defined()) throw CheckpointError(path + ": storage '" + kv.first + "' has no data in the file");
  return finish(obj, PthFormat::Legacy, path, copies);
}

}  // namespace

const char* formatName(PthFormat f) { return f == PthFormat::Zip ? "zip" : "legacy"; }

Checkpoint readCheckpoint(const std::string& path, bool checkStorageCrc) {
  InputFile f(path);
  uint64_t n = f.size();
  if (n == 0) throw CheckpointError(path + ": empty file");
  std::string head = f.read(0, static_cast<size_t>(std::min<uint64_t>(n, 512)));
  const auto* d = reinterpret_cast<const uint8_t*>(head.data());
  if (n >= 4 && rd(d, 4) == 0x04034b50) return readZip(f, path, checkStorageCrc);
  if (legacyMagicLength(d, head.size()) > 0) return readLegacy(f, path);
  if (n >= 262 && std::memcmp(d + 257, "ustar", 5) == 0)
    throw CheckpointError(path + ": tar-format checkpoint (torch < 0.4) is not supported; load it with an old torch and re-save it with torch.save");
  if (n >= 2 && d[0] == 0x80)
    throw CheckpointError(path + ": a plain pickle without PyTorch's header: not a torch.save checkpoint");
  throw CheckpointError(path + ": not a PyTorch checkpoint (neither the zip nor the legacy layout)");
}


}  // namespace spurmem
