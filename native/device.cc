#include "device.h"

#include "torch_compat.h"

#include <stdexcept>

namespace spurmem {

bool libtorchHasCuda() { return compat::builtWithCuda(); }

int64_t cudaDeviceCount() { return libtorchHasCuda() ? static_cast<int64_t>(torch::cuda::device_count()) : 0; }

torch::Device parseDevice(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    int64_t index = 0;
    if (name.size() > 4) {
      if (name[4] != ':' || name.size() == 5 || name.size() > 8 ||
          name.find_first_not_of("0123456789", 5) != std::string::npos)
        throw std::invalid_argument("device '" + name + "': expected cpu, cuda or cuda:N");
      index = std::stoll(name.substr(5));
    }
    if (!libtorchHasCuda())
      throw std::invalid_argument("device '" + name +
                                  "': this libtorch was built without CUDA; rebuild spurmem against a CUDA libtorch "
                                  "(set LIBTORCH to the official CUDA libtorch or to a pip torch's folder) or use --device cpu");
    int64_t n = cudaDeviceCount();
    if (index >= n)
      throw std::invalid_argument("device '" + name + "': no CUDA device " + std::to_string(index) + " (found " +
                                  std::to_string(n) + ")");
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw std::invalid_argument("device '" + name + "': expected cpu, cuda or cuda:N");
}

}  // namespace spurmem
