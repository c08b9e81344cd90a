#include "tcp/congestion.hpp"

#include <algorithm>
#include <cassert>
#include <limits>

namespace weft::tcp {

namespace {

constexpr std::uint32_t initial_ssthresh = 0x7fffffff;

// Window arithmetic is done in 64 bits and saturated, so a huge SMSS or a
// long run of growth can never wrap cwnd around to a tiny value.
std::uint32_t saturate(std::uint64_t v) {
  return static_cast<std::uint32_t>(std::min<std::uint64_t>(v, std::numeric_limits<std::uint32_t>::max()));
}

class NewReno final : public CongestionControl {
 public:
  explicit NewReno(std::uint32_t smss) : smss_(std::max(smss, 1u)), cwnd_(initial_window(smss_)) {}

  const char* name() const override { return "newreno"; }
  std::uint32_t cwnd() const override { return cwnd_; }
  std::uint32_t ssthresh() const override { return ssthresh_; }

  void set_cwnd(std::uint32_t bytes) override {
    started_ = true;
    cwnd_ = std::max(bytes, smss_);
    // The CA byte counter measured progress against the old window; carried
    // over, it would grant an increase the new window has not earned.
    bytes_acked_ = 0;
  }

  void set_mss(std::uint32_t smss) override {
    assert(smss > 0);
    smss_ = std::max(smss, 1u);
    if (!started_)
      cwnd_ = initial_window(smss_);  // RFC 6928 §2: IW is a function of SMSS
    else
      cwnd_ = std::max(cwnd_, smss_);
  }

  void on_ack(std::uint32_t bytes_acked, std::uint32_t flight_size_before,
              Instant /*now: NewReno is not time-based*/) override {
    started_ = true;
    if (bytes_acked == 0) return;

    // RFC 3465 §2.3: after an RTO, one ACK for a retransmission can cover
    // many segments the receiver already held, so a large L would release a
    // burst. Use L = 1*SMSS until the data outstanding at the timeout has
    // been acknowledged (BSD's "snd_nxt == snd_max" test, counted in bytes).
    const bool after_rto = rto_bytes_outstanding_ > 0;
    rto_bytes_outstanding_ -= std::min(bytes_acked, rto_bytes_outstanding_);

    // Not cwnd-limited (RFC 7661 §4 idea, see the header): the window was
    // not in use, so this ACK says nothing about whether a larger one fits.
    if (std::uint64_t{flight_size_before} * 2 < cwnd_) return;

    if (cwnd_ < ssthresh_) {
      // Slow start, RFC 5681 §3.1 with RFC 3465 §2.2: cwnd += min(N, L).
      // Stop at ssthresh: from there on, congestion avoidance applies.
      const std::uint64_t limit = after_rto ? smss_ : std::uint64_t{2} * smss_;
      const std::uint64_t incr = std::min<std::uint64_t>(bytes_acked, limit);
      cwnd_ = saturate(std::min<std::uint64_t>(cwnd_ + incr, ssthresh_));
      return;
    }
    // Congestion avoidance, RFC 3465 §2.1 / RFC 5681 §3.1 (byte counting):
    // once a full cwnd of bytes has been acknowledged, add one SMSS. At most
    // one SMSS per ACK, so a stretch ACK cannot cause a jump.
    bytes_acked_ += bytes_acked;
    if (bytes_acked_ >= cwnd_) {
      bytes_acked_ -= cwnd_;
      cwnd_ = saturate(std::uint64_t{cwnd_} + smss_);
    }
  }

  void on_loss_detected(std::uint32_t flight_size) override {
    started_ = true;
    ssthresh_ = halve(flight_size);
    bytes_acked_ = 0;
    // A new congestion episode: its own recovery decides what follows.
    rto_bytes_outstanding_ = 0;
  }

  void on_recovery_exit() override {
    started_ = true;
    cwnd_ = std::max(ssthresh_, smss_);
    bytes_acked_ = 0;
  }

  void on_rto(std::uint32_t flight_size, bool first_of_series) override {
    started_ = true;
    if (first_of_series) ssthresh_ = halve(flight_size);
    cwnd_ = smss_;  // LW, RFC 5681 §3.1
    bytes_acked_ = 0;
    rto_bytes_outstanding_ = std::max(rto_bytes_outstanding_, flight_size);
  }

  void on_idle(Duration idle, Duration rto) override {
    started_ = true;
    if (idle <= rto) return;
    cwnd_ = std::min(initial_window(smss_), cwnd_);  // RW, RFC 5681 §4.1
    bytes_acked_ = 0;
  }

 private:
  // RFC 5681 §3.1 eq. 4: ssthresh = max(FlightSize / 2, 2*SMSS).
  std::uint32_t halve(std::uint32_t flight_size) const {
    return saturate(std::max<std::uint64_t>(flight_size / 2, std::uint64_t{2} * smss_));
  }

  std::uint32_t smss_;
  std::uint32_t cwnd_;
  std::uint32_t ssthresh_ = initial_ssthresh;
  // RFC 3465 §2.1's bytes_acked, for congestion avoidance.
  std::uint64_t bytes_acked_ = 0;
  // Bytes that were outstanding at the last RTO and are not yet acked.
  std::uint32_t rto_bytes_outstanding_ = 0;
  // Whether any event has moved cwnd away from the initial window.
  bool started_ = false;
};

}  // namespace

std::uint32_t initial_window(std::uint32_t smss) {
  const std::uint64_t s = smss;
  return saturate(std::min(10 * s, std::max<std::uint64_t>(2 * s, 14600)));
}

std::unique_ptr<CongestionControl> make_newreno(std::uint32_t smss) {
  assert(smss > 0);
  return std::make_unique<NewReno>(smss);
}

}  // namespace weft::tcp
