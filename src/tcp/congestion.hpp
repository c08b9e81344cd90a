// Congestion control: the congestion window (cwnd) and the slow start
// threshold (ssthresh) of RFC 5681, behind an interface so that other
// algorithms (CUBIC, RFC 9438) can replace NewReno later.
//
// The split of work: this class owns cwnd and ssthresh and decides how they
// grow and shrink on the events below. Loss *recovery* (NewReno, RFC 6582;
// SACK-based, RFC 6675) is a separate algorithm that detects losses, decides
// what to retransmit and, while in recovery, drives cwnd through set_cwnd()
// (inflation and deflation). on_ack() is therefore only for ACKs outside
// recovery.
//
// All quantities are bytes. Nothing here reads a clock; times are passed in.
#pragma once

#include <cstdint>
#include <memory>

#include "base/time.hpp"

namespace weft::tcp {

class CongestionControl {
 public:
  virtual ~CongestionControl() = default;

  // A short lower-case name, e.g. "newreno", for traces and netstat.
  virtual const char* name() const = 0;
  virtual std::uint32_t cwnd() const = 0;
  virtual std::uint32_t ssthresh() const = 0;

  // For the recovery algorithm (inflate/deflate, RFC 6582 §3.2, RFC 6675
  // §5). Clamped to at least 1 SMSS so the sender can always make progress.
  // Also the way to apply RFC 5681 §3.1's rule that if the SYN or SYN-ACK
  // was lost the initial window is one segment: call set_mss() first, then
  // set_cwnd(smss).
  virtual void set_cwnd(std::uint32_t bytes) = 0;

  // The handshake fixed SMSS (RFC 9293 §3.7.1). While cwnd is still the
  // untouched initial window (no on_ack, loss, RTO, idle restart or
  // set_cwnd yet -- i.e. nothing has been sent and acknowledged), the
  // initial window is recomputed for the new SMSS (RFC 6928 §2). Afterwards
  // only SMSS changes (e.g. path MTU discovery), cwnd is kept but never
  // below one segment.
  virtual void set_mss(std::uint32_t smss) = 0;

  // New data cumulatively acknowledged while NOT in loss recovery.
  // bytes_acked: bytes this ACK newly acknowledged (RFC 5681's N).
  // flight_size_before: bytes outstanding just before this ACK was
  //   processed (SND.NXT - SND.UNA before SND.UNA advanced).
  // Slow start (cwnd < ssthresh): cwnd += min(N, L), L = 2*SMSS (RFC 3465
  //   §2.2, §2.3), 1*SMSS while the data outstanding at an RTO is being
  //   acknowledged (RFC 3465 §2.3). Growth stops at ssthresh.
  // Congestion avoidance: byte counting (RFC 3465 §2.1, RFC 5681 §3.1):
  //   cwnd += SMSS each time a full cwnd of bytes has been acknowledged.
  // cwnd does not grow when the sender was not cwnd-limited, judged as
  //   2 * flight_size_before < cwnd: the idea of RFC 7661 §4 (a window is
  //   "validated" only while at least half of it is in use), applied per
  //   ACK. Without it an application-limited sender inflates cwnd to values
  //   the path has never carried and later bursts them into the network.
  virtual void on_ack(std::uint32_t bytes_acked, std::uint32_t flight_size_before, Instant now) = 0;

  // Entering fast recovery (third duplicate ACK, or the RFC 6675 trigger):
  // ssthresh = max(FlightSize / 2, 2*SMSS) (RFC 5681 §3.2 step 2, eq. 4 of
  // §3.1). cwnd is left alone: the recovery algorithm sets it next.
  // flight_size here and in on_rto(): bytes sent and not yet acknowledged
  // (highest sequence sent minus SND.UNA), even if SND.NXT was pulled back
  // for retransmission.
  virtual void on_loss_detected(std::uint32_t flight_size) = 0;

  // Leaving fast recovery: cwnd = ssthresh (RFC 6582 §3.2 step 3, option 2;
  // RFC 6675 §5 end of recovery), "deflating the window".
  virtual void on_recovery_exit() = 0;

  // The retransmission timer expired. ssthresh by eq. 4 only for the first
  // RTO of a series: RFC 5681 §3.1 (end of the section) holds ssthresh
  // constant when the segment that timed out had already been retransmitted
  // by the timer, since FlightSize then reflects the collapsed window, not
  // what the path carried. cwnd = LW = 1 SMSS (RFC 5681 §3.1).
  virtual void on_rto(std::uint32_t flight_size, bool first_of_series) = 0;

  // Restart after idle (RFC 5681 §4.1): if nothing was received for more
  // than one RTO, cwnd = RW = min(IW, cwnd), so an old window is not sent as
  // one line-rate burst into a network whose state is unknown.
  virtual void on_idle(Duration idle, Duration rto) = 0;
};

// RFC 5681 congestion control as used by NewReno: slow start and congestion
// avoidance with appropriate byte counting (RFC 3465, L = 2*SMSS).
// Initial cwnd: initial_window(smss). Initial ssthresh: 0x7fffffff, RFC 5681
// §3.1's "arbitrarily high": no usable window (at most 2^30 bytes with
// window scaling, RFC 7323 §2.3) reaches it, so only the first loss ends
// slow start, and it still fits a signed 32-bit value for traces.
std::unique_ptr<CongestionControl> make_newreno(std::uint32_t smss);

// RFC 6928 §2: IW = min(10*SMSS, max(2*SMSS, 14600)).
std::uint32_t initial_window(std::uint32_t smss);

}  // namespace weft::tcp
