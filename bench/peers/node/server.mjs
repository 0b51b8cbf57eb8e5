// Peer for bench/run.sh: Node's `ws`, a minimal broadcast chat (every text
// message to every client on /chat) and /echo. Prints "listening on ADDR".
import http from "node:http";
import { WebSocketServer } from "ws";

const port = Number(process.argv[2] || 0);
const server = http.createServer((req, res) => res.writeHead(404).end());
const chat = new WebSocketServer({ noServer: true, perMessageDeflate: false });
const echo = new WebSocketServer({ noServer: true, perMessageDeflate: false });
server.on("upgrade", (req, socket, head) => {
  const wss = req.url.startsWith("/chat") ? chat : req.url.startsWith("/echo") ? echo : null;
  if (!wss) return socket.destroy();
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit("connection", ws));
});
chat.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => {
    for (const client of chat.clients) if (client.readyState === 1) client.send(data, { binary: isBinary });
  });
});
echo.on("connection", (ws) => ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary })));
server.listen(port, "127.0.0.1", () => console.error(`listening on 127.0.0.1:${server.address().port}`));
