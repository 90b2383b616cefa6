// A listen queue wider than cpp-httplib 0.11's. Its servers listen with a backlog of CPPHTTPLIB_LISTEN_BACKLOG (5),
// fixed inside Debian's shared library: a burst of new connections overflows it and the extra clients wait for their
// SYN retransmits (1 s, 3 s, 7 s, ...). Linux applies a second listen(2) on a listening socket as a new backlog
// (https://man7.org/linux/man-pages/man2/listen.2.html), so: the server's public socket-options hook
// (Server::set_socket_options, called with the socket before bind) remembers the socket, and once bind_to_port has
// made it listen, widen() asks for SOMAXCONN (capped by net.core.somaxconn, 4096 on Debian 12).
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <functional>
#include <memory>

namespace keyrelay::relay {

class ListenBacklog {
public:
    // The socket options to give the server: SO_REUSEADDR (a restart need not wait for TIME_WAIT), and not
    // cpp-httplib's default SO_REUSEPORT, which would let a second server bind the same port and take half its
    // connections.
    std::function<void(int)> socket_options() const {
        auto fd = fd_;
        return [fd](int sock) {
            int yes = 1;
            ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
            fd->store(sock);
        };
    }
    // After a successful bind_to_port / bind_to_any_port. False when the socket is unknown or listen(2) refused.
    bool widen() const {
        int sock = fd_->load();
        return sock >= 0 && ::listen(sock, SOMAXCONN) == 0;
    }

private:
    std::shared_ptr<std::atomic<int>> fd_ = std::make_shared<std::atomic<int>>(-1);
};

}  // namespace keyrelay::relay
