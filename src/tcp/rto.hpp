// The retransmission timeout (RFC 6298): a smoothed RTT estimate, its
// variation, and the exponential backoff applied while retransmissions go
// unanswered.
//
// Pure arithmetic: the estimator never reads a clock. The caller measures an
// RTT (send time to ACK time, or from the timestamp option) and hands it in.
//
// Karn's algorithm (RFC 6298 §3) is the caller's job: on_sample() MUST NOT be
// given an RTT measured on a segment that was retransmitted, because the ACK
// cannot say which transmission it answers -- unless the TCP timestamp option
// (RFC 7323 §4) ties the ACK to one transmission. Doing it here would need
// per-segment state the estimator does not have.
#pragma once

#include <optional>

#include "base/time.hpp"

namespace weft::tcp {

struct RtoConfig {
  // RFC 6298 §2.1: RTO before the first RTT sample.
  Duration initial = 1s;
  // Lower bound on the computed RTO. RFC 6298 §2.4 says 1 s ("SHOULD"); weft
  // defaults to Linux's TCP_RTO_MIN of 200 ms, which recovers from tail loss
  // far faster on modern paths without the spurious timeouts that motivated
  // the 1 s floor (those came from coarse 500 ms clocks). Set to 1s to follow
  // the RFC to the letter.
  Duration min = 200ms;
  // Upper bound (RFC 6298 §2.5: "at least 60 seconds"); 120 s is Linux's
  // TCP_RTO_MAX. Also caps the backed-off RTO.
  Duration max = 120s;
  // G, the clock granularity of RFC 6298 §2: the variance term never counts
  // for less than one tick, so RTO > SRTT even when RTTVAR decays to zero.
  Duration granularity = 1ms;
};

class RtoEstimator {
 public:
  explicit RtoEstimator(RtoConfig cfg = {});

  // Feeds one RTT measurement. The first sample initialises SRTT and RTTVAR
  // (RFC 6298 §2.2), later ones smooth them with alpha = 1/8, beta = 1/4
  // (§2.3). Also clears the backoff: RFC 6298 §5 (the note after §5.7) lets
  // a new RTT measurement "collapse" a doubled RTO back down, and a sample
  // can only exist once new data was sent and acknowledged. Linux instead
  // clears the backoff on any ACK of new data; weft follows the RFC, so an
  // ACK that yields no sample (Karn) keeps the backed-off RTO.
  // Must not be called for retransmitted segments; see the file comment.
  void on_sample(Duration rtt);

  // The RTO to arm the retransmission timer with: the base RTO
  // (SRTT + max(G, K*RTTVAR), §2.3; or the initial value, §2.1) clamped to
  // [min, max] (§2.4, §2.5), then doubled once per backoff (§5.5) and capped
  // at max.
  Duration rto() const;

  // RFC 6298 §5.5: the retransmission timer expired; double the RTO.
  void backoff();
  void clear_backoff();
  // Consecutive backoffs since the last sample or clear; the caller compares
  // it against its retry limit (RFC 9293 §3.8.3, R2).
  unsigned backoffs() const { return backoffs_; }

  // SRTT, or nullopt before the first sample.
  std::optional<Duration> srtt() const { return srtt_; }
  // RTTVAR; zero before the first sample.
  Duration rttvar() const { return rttvar_; }

  // RFC 6298 §5.7: if the timer expired while waiting for the ACK of a SYN
  // (or SYN-ACK), and the RTO in use is below 3 s, the RTO MUST be
  // re-initialised to 3 s when data transmission begins. Call it once the
  // handshake completes after such a timeout. Clears the backoff and raises
  // the base RTO to at least 3 s (still capped at max) until the next
  // sample recomputes it per §2.
  void reset_after_syn_timeout();

  const RtoConfig& config() const { return cfg_; }

 private:
  Duration base_rto() const;

  RtoConfig cfg_;
  std::optional<Duration> srtt_;
  Duration rttvar_{0};
  unsigned backoffs_ = 0;
  bool syn_timeout_floor_ = false;
};

}  // namespace weft::tcp
