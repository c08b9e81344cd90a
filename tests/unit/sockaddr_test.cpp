// wire/sockaddr.hpp: the one sockaddr_in <-> Endpoint conversion, its
// checks in each caller's order, and the kernel's truncating copy-out.
#include "wire/sockaddr.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstring>

namespace weft {
namespace {

const Endpoint kEp{Ipv4Addr{192, 0, 2, 7}, Port{8080}};

const sockaddr* sa(const sockaddr_in& s) { return reinterpret_cast<const sockaddr*>(&s); }

TEST(Sockaddr, RoundTripsInNetworkByteOrder) {
  const sockaddr_in s = to_sockaddr(kEp);
  EXPECT_EQ(s.sin_family, AF_INET);
  EXPECT_EQ(s.sin_port, htons(8080));
  EXPECT_EQ(s.sin_addr.s_addr, htonl(0xc0000207));
  EXPECT_EQ(from_sockaddr(s), kEp);
}

TEST(Sockaddr, EndpointFromAValidAddress) {
  const sockaddr_in s = to_sockaddr(kEp);
  for (auto check : {SockaddrCheck::length_first, SockaddrCheck::family_first}) {
    Endpoint out;
    EXPECT_EQ(endpoint_from(sa(s), sizeof s, out, check), std::errc{});
    EXPECT_EQ(out, kEp);
  }
  // A longer buffer (a sockaddr_storage) is fine.
  sockaddr_storage st{};
  std::memcpy(&st, &s, sizeof s);
  Endpoint out;
  EXPECT_EQ(endpoint_from(reinterpret_cast<const sockaddr*>(&st), sizeof st, out), std::errc{});
  EXPECT_EQ(out, kEp);
}

TEST(Sockaddr, NullIsEfaultAndLeavesTheOutputAlone) {
  Endpoint out = kEp;
  EXPECT_EQ(endpoint_from(nullptr, sizeof(sockaddr_in), out), std::errc::bad_address);
  EXPECT_EQ(endpoint_from(nullptr, 0, out, SockaddrCheck::family_first), std::errc::bad_address);
  EXPECT_EQ(out, kEp);
}

TEST(Sockaddr, LengthFirstOrder) {
  sockaddr_in s = to_sockaddr(kEp);
  Endpoint out = kEp;
  EXPECT_EQ(endpoint_from(sa(s), sizeof s - 1, out), std::errc::invalid_argument);
  EXPECT_EQ(endpoint_from(sa(s), 0, out), std::errc::invalid_argument);
  s.sin_family = AF_INET6;
  EXPECT_EQ(endpoint_from(sa(s), sizeof s, out), std::errc::address_family_not_supported);
  // Short and of the wrong family: the length is checked first.
  EXPECT_EQ(endpoint_from(sa(s), 2, out), std::errc::invalid_argument);
  EXPECT_EQ(out, kEp);
}

TEST(Sockaddr, FamilyFirstOrder) {
  sockaddr_in s = to_sockaddr(kEp);
  Endpoint out = kEp;
  const auto ff = SockaddrCheck::family_first;
  EXPECT_EQ(endpoint_from(sa(s), 1, out, ff), std::errc::invalid_argument);  // not even the family
  EXPECT_EQ(endpoint_from(sa(s), sizeof s - 1, out, ff), std::errc::invalid_argument);
  s.sin_family = AF_INET6;
  // Short and of the wrong family: the family is checked first.
  EXPECT_EQ(endpoint_from(sa(s), 2, out, ff), std::errc::address_family_not_supported);
  EXPECT_EQ(endpoint_from(sa(s), sizeof s, out, ff), std::errc::address_family_not_supported);
  EXPECT_EQ(out, kEp);
}

TEST(Sockaddr, CopyOutTruncatesAndReportsTheFullSize) {
  sockaddr_in s{};
  socklen_t len = sizeof s;
  EXPECT_EQ(copy_out(kEp, reinterpret_cast<sockaddr*>(&s), &len), sizeof s);
  EXPECT_EQ(len, sizeof s);
  EXPECT_EQ(from_sockaddr(s), kEp);
  EXPECT_EQ(s.sin_family, AF_INET);

  // A short buffer gets the first bytes, nothing past them.
  unsigned char buf[8];
  std::memset(buf, 0xaa, sizeof buf);
  len = 4;
  EXPECT_EQ(copy_out(kEp, reinterpret_cast<sockaddr*>(buf), &len), sizeof(sockaddr_in));
  EXPECT_EQ(len, sizeof(sockaddr_in));
  const sockaddr_in full = to_sockaddr(kEp);
  EXPECT_EQ(std::memcmp(buf, &full, 4), 0);
  for (int i = 4; i < 8; ++i) EXPECT_EQ(buf[i], 0xaa) << i;

  // Not asked for: nothing written.
  len = 3;
  EXPECT_EQ(copy_out(kEp, nullptr, &len), 0u);
  EXPECT_EQ(len, 3u);
  EXPECT_EQ(copy_out(kEp, reinterpret_cast<sockaddr*>(buf), nullptr), 0u);
}

}  // namespace
}  // namespace weft
