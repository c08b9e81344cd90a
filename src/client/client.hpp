// libweft-client, C++ side: what tools need beyond the C API (weft.h).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "base/result.hpp"

namespace weft::client {

// The netstat snapshot of host `name_or_path` (docs/netstat-json.md), over
// a control connection of its own.
// Errors: ENETDOWN (no daemon there; last_detail() says where it looked),
// EACCES (the control socket's permissions), EPROTONOSUPPORT (another
// protocol version), EPROTO (a malformed answer).
Result<nlohmann::json> netstat_snapshot(const std::string& name_or_path);

// The one-line explanation behind the last ENETDOWN/EPROTONOSUPPORT in
// this thread.
std::string last_detail();

}  // namespace weft::client
