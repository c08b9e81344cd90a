/* packetdrill_interface.h compiles as C (the tool is C) and lays the table
 * out as the tool's packetdrill.h does: 33 pointers, in this order. */
#include <stddef.h>

#include "packetdrill_interface.h"

#define AT(member, index) \
  _Static_assert(offsetof(struct packetdrill_interface, member) == (index) * sizeof(void *), #member)

AT(userdata, 0);
AT(free, 1);
AT(socket, 2);
AT(bind, 3);
AT(listen, 4);
AT(accept, 5);
AT(connect, 6);
AT(read, 7);
AT(readv, 8);
AT(recv, 9);
AT(recvfrom, 10);
AT(recvmsg, 11);
AT(write, 12);
AT(writev, 13);
AT(send, 14);
AT(sendto, 15);
AT(sendmsg, 16);
AT(fcntl, 17);
AT(ioctl, 18);
AT(close, 19);
AT(shutdown, 20);
AT(getsockopt, 21);
AT(setsockopt, 22);
AT(poll, 23);
AT(netdev_send, 24);
AT(netdev_receive, 25);
AT(usleep, 26);
AT(gettimeofday, 27);
AT(epoll_create, 28);
AT(epoll_ctl, 29);
AT(epoll_wait, 30);
AT(pipe, 31);
AT(splice, 32);
_Static_assert(sizeof(struct packetdrill_interface) == 33 * sizeof(void *), "size");

/* Called from pd_test.cpp so that this unit is linked, not just compiled. */
int pd_layout_members(void) { return (int)(sizeof(struct packetdrill_interface) / sizeof(void *)); }
