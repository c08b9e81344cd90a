// Links weft::tcp alone from an installed weft: the headers resolve with the
// tree's layout and the static layers below tcp come in by themselves.
#include <chrono>
#include <cstdio>

#include "tcp/rto.hpp"
#include "wire/checksum.hpp"

int main() {
  weft::tcp::RtoEstimator rto;
  const unsigned char data[] = {0x45, 0x00};
  std::printf("rto %lld ms, checksum %04x\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(rto.rto()).count()),
              static_cast<unsigned>(weft::wire::internet_checksum(data)));
  return 0;
}
