#include "tcp/rto.hpp"

#include <algorithm>
#include <cassert>
#include <limits>

namespace weft::tcp {

namespace {

// RFC 6298 §2: alpha = 1/8, beta = 1/4, K = 4. The divisions are done in
// nanoseconds, so truncation costs at most a nanosecond per sample.
constexpr Duration::rep alpha_den = 8;
constexpr Duration::rep beta_den = 4;
constexpr Duration::rep k = 4;

// RFC 6298 §5.7.
constexpr Duration syn_timeout_rto = 3s;

}  // namespace

RtoEstimator::RtoEstimator(RtoConfig cfg) : cfg_(cfg) {
  assert(cfg_.min <= cfg_.max);
  assert(cfg_.granularity >= Duration::zero());
}

void RtoEstimator::on_sample(Duration rtt) {
  // A negative RTT can only come from a caller bug (or a clock that went
  // backwards in the driver); treat it as zero rather than corrupt SRTT.
  assert(rtt >= Duration::zero());
  rtt = std::max(rtt, Duration::zero());

  if (!srtt_) {
    // §2.2: SRTT <- R, RTTVAR <- R/2.
    srtt_ = rtt;
    rttvar_ = rtt / 2;
  } else {
    // §2.3, in this order: RTTVAR uses the SRTT from before this sample.
    //   RTTVAR <- (1 - beta) * RTTVAR + beta * |SRTT - R'|
    //   SRTT   <- (1 - alpha) * SRTT + alpha * R'
    const Duration err = *srtt_ > rtt ? *srtt_ - rtt : rtt - *srtt_;
    rttvar_ = ((beta_den - 1) * rttvar_ + err) / beta_den;
    srtt_ = ((alpha_den - 1) * *srtt_ + rtt) / alpha_den;
  }
  // RFC 6298 §5 (after §5.7): a fresh measurement recomputes the RTO,
  // collapsing any backoff; a §5.7 floor is superseded the same way.
  backoffs_ = 0;
  syn_timeout_floor_ = false;
}

Duration RtoEstimator::base_rto() const {
  Duration r = cfg_.initial;                                        // §2.1
  if (srtt_) r = *srtt_ + std::max(cfg_.granularity, k * rttvar_);  // §2.2 / §2.3
  if (syn_timeout_floor_) r = std::max(r, syn_timeout_rto);         // §5.7
  return std::clamp(r, cfg_.min, cfg_.max);                         // §2.4, §2.5
}

Duration RtoEstimator::rto() const {
  Duration r = base_rto();
  // §5.5: RTO <- RTO * 2 per expiry, bounded by the §2.5 maximum. Stop
  // doubling once the cap is reached, so no backoff count can overflow.
  for (unsigned i = 0; i < backoffs_; ++i) {
    if (r >= cfg_.max / 2) return cfg_.max;
    r *= 2;
  }
  return r;
}

void RtoEstimator::backoff() {
  if (backoffs_ < std::numeric_limits<unsigned>::max()) ++backoffs_;
}

void RtoEstimator::clear_backoff() { backoffs_ = 0; }

void RtoEstimator::reset_after_syn_timeout() {
  backoffs_ = 0;
  syn_timeout_floor_ = true;
}

}  // namespace weft::tcp
