// Peer for bench/run.sh: Boost.Beast (Debian's libboost-dev), the asynchronous
// model: one io_context run by one thread per core, a strand per connection,
// and a per-connection write queue of shared, immutable messages (a message
// is copied once for a broadcast, not once per client). /chat broadcasts
// every text message to every client; /echo echoes. Prints "listening on ADDR".
// Build: g++ -O2 -std=c++17 server.cpp -o server -lpthread
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>
#include <vector>

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Message = std::shared_ptr<const std::string>;

class Session;

// Every chat session, for the broadcast.
class Room {
 public:
  void join(Session* s) {
    std::lock_guard<std::mutex> lock(mutex_);
    sessions_.insert(s);
  }
  void leave(Session* s) {
    std::lock_guard<std::mutex> lock(mutex_);
    sessions_.erase(s);
  }
  void broadcast(const Message& m);

 private:
  std::mutex mutex_;
  std::unordered_set<Session*> sessions_;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket&& socket, Room* room) : ws_(std::move(socket)), room_(room) {}

  ~Session() {
    if (room_) room_->leave(this);
  }

  void start(http::request<http::string_body> req) {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.text(true);
    ws_.async_accept(req, beast::bind_front_handler(&Session::on_accept, shared_from_this()));
  }

  // A chat message for this client, from any thread: the write queue is
  // touched only on the connection's strand.
  void send(const Message& m) {
    net::post(ws_.get_executor(), [self = shared_from_this(), m] { self->queue(m); });
  }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) return;
    if (room_) room_->join(this);
    read();
  }

  void read() { ws_.async_read(buffer_, beast::bind_front_handler(&Session::on_read, shared_from_this())); }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) return;
    if (!room_) {
      // Echo straight from the read buffer, then read the next message.
      ws_.text(ws_.got_text());
      ws_.async_write(buffer_.data(), beast::bind_front_handler(&Session::on_echoed, shared_from_this()));
      return;
    }
    if (ws_.got_text()) room_->broadcast(std::make_shared<const std::string>(beast::buffers_to_string(buffer_.data())));
    buffer_.consume(buffer_.size());
    read();
  }

  void on_echoed(beast::error_code ec, std::size_t) {
    if (ec) return;
    buffer_.consume(buffer_.size());
    read();
  }

  void queue(const Message& m) {
    queue_.push_back(m);
    if (queue_.size() == 1) write();
  }

  void write() {
    ws_.async_write(net::buffer(*queue_.front()),
                    beast::bind_front_handler(&Session::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, std::size_t) {
    if (ec) return;
    queue_.pop_front();
    if (!queue_.empty()) write();
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  std::deque<Message> queue_;
  Room* room_;  // null on /echo
};

void Room::broadcast(const Message& m) {
  // Take strong references under the lock, post outside it.
  std::vector<std::shared_ptr<Session>> targets;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    targets.reserve(sessions_.size());
    for (Session* s : sessions_) {
      // weak_from_this().lock(): a session being destroyed is skipped.
      if (auto p = s->weak_from_this().lock()) targets.push_back(std::move(p));
    }
  }
  for (auto& s : targets) s->send(m);
}

// Reads the upgrade request, then hands the socket to a Session.
class Upgrade : public std::enable_shared_from_this<Upgrade> {
 public:
  Upgrade(tcp::socket&& socket, Room* room) : stream_(std::move(socket)), room_(room) {}

  void start() {
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, req_, beast::bind_front_handler(&Upgrade::on_read, shared_from_this()));
  }

 private:
  void on_read(beast::error_code ec, std::size_t) {
    if (ec || !websocket::is_upgrade(req_)) return;
    stream_.expires_never();
    auto target = req_.target();
    bool chat = target.starts_with("/chat");
    bool echo = target.starts_with("/echo");
    if (!chat && !echo) return;
    std::make_shared<Session>(stream_.release_socket(), chat ? room_ : nullptr)->start(std::move(req_));
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  Room* room_;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, tcp::endpoint at, Room* room) : ioc_(ioc), acceptor_(ioc), room_(room) {
    acceptor_.open(at.protocol());
    acceptor_.set_option(net::socket_base::reuse_address(true));
    acceptor_.bind(at);
    acceptor_.listen(4096);
  }

  tcp::endpoint local() const { return acceptor_.local_endpoint(); }

  void accept() {
    acceptor_.async_accept(net::make_strand(ioc_), beast::bind_front_handler(&Listener::on_accept, shared_from_this()));
  }

 private:
  void on_accept(beast::error_code ec, tcp::socket socket) {
    if (!ec) {
      socket.set_option(tcp::no_delay(true));
      std::make_shared<Upgrade>(std::move(socket), room_)->start();
    }
    accept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  Room* room_;
};

int main(int argc, char** argv) {
  unsigned short port = argc > 1 ? static_cast<unsigned short>(std::atoi(argv[1])) : 0;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  net::io_context ioc(static_cast<int>(threads));
  Room room;
  auto listener = std::make_shared<Listener>(ioc, tcp::endpoint(net::ip::make_address("127.0.0.1"), port), &room);
  listener->accept();
  std::cerr << "listening on 127.0.0.1:" << listener->local().port() << std::endl;

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](beast::error_code, int) { ioc.stop(); });

  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& t : pool) t.join();
  return 0;
}
