// Peer for bench/run.sh: Poco C++ (HTTPServer + WebSocket, a large thread
// pool): thread-per-connection, and a broadcast written straight from the
// receiving thread to every client, as the seed design does it. /chat
// broadcasts every text message to every client; /echo echoes.
// Build: g++ -O2 -std=c++17 server.cpp -o server -lPocoNet -lPocoFoundation
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/ThreadPool.h>
#include <iostream>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

using namespace Poco::Net;

static std::mutex clients_mutex;
static std::set<WebSocket*> clients;

/// Keeps a chat client in the broadcast set for the life of its handler.
struct Registered {
  WebSocket* ws;
  explicit Registered(WebSocket* w) : ws(w) {
    std::lock_guard<std::mutex> lock(clients_mutex);
    clients.insert(ws);
  }
  ~Registered() {
    std::lock_guard<std::mutex> lock(clients_mutex);
    clients.erase(ws);
  }
};

class Handler : public HTTPRequestHandler {
 public:
  void handleRequest(HTTPServerRequest& req, HTTPServerResponse& resp) override {
    bool chat = req.getURI().rfind("/chat", 0) == 0;
    try {
      WebSocket ws(req, resp);
      ws.setReceiveTimeout(Poco::Timespan(0, 0));
      ws.setNoDelay(true);
      std::unique_ptr<Registered> registered;
      if (chat) registered = std::make_unique<Registered>(&ws);
      // Uninitialized: only the pages a message touches become resident.
      std::unique_ptr<char[]> storage(new char[1 << 20]);
      char* buf = storage.get();
      const int capacity = 1 << 20;
      for (;;) {
        int flags = 0;
        int n = ws.receiveFrame(buf, capacity, flags);
        int op = flags & WebSocket::FRAME_OP_BITMASK;
        if (op == WebSocket::FRAME_OP_CLOSE || (n == 0 && flags == 0)) break;
        if (op == WebSocket::FRAME_OP_PING) {
          ws.sendFrame(buf, n, WebSocket::FRAME_FLAG_FIN | WebSocket::FRAME_OP_PONG);
          continue;
        }
        if (op != WebSocket::FRAME_OP_TEXT && op != WebSocket::FRAME_OP_BINARY) continue;
        if (!chat) {
          ws.sendFrame(buf, n, flags);
          continue;
        }
        // Write straight from this thread to every client, under the lock.
        std::lock_guard<std::mutex> lock(clients_mutex);
        for (WebSocket* c : clients) {
          try {
            c->sendFrame(buf, n, WebSocket::FRAME_TEXT);
          } catch (...) {
          }
        }
      }
    } catch (...) {
    }
  }
};

class Factory : public HTTPRequestHandlerFactory {
 public:
  HTTPRequestHandler* createRequestHandler(const HTTPServerRequest&) override { return new Handler; }
};

int main(int argc, char** argv) {
  int port = argc > 1 ? std::atoi(argv[1]) : 0;
  ServerSocket socket(SocketAddress("127.0.0.1", (Poco::UInt16)port), 1024);
  auto* params = new HTTPServerParams;
  params->setMaxThreads(8000);
  params->setMaxQueued(8000);
  params->setKeepAlive(false);
  Poco::ThreadPool pool(16, 8000, 60, 128 * 1024);
  HTTPServer server(new Factory, pool, socket, params);
  server.start();
  std::cerr << "listening on 127.0.0.1:" << socket.address().port() << std::endl;
  for (;;) pause();
}
