"""Loopback stubs of the OpenAI Responses API and the Gemini API, for running the real CLIs end to end offline."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, cast


class _Stub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    status: ClassVar[int] = 200
    requests: ClassVar[list[dict[str, Any]]] = []

    def log_message(self, format: str, *args: Any) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:  # a websocket upgrade, or a metadata lookup: neither is offered
        self._send_json(404, {})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"{}")
        type(self).requests.append({"path": self.path, "body": body})
        if self.status == 200:
            self.answer()
        else:
            self._send_json(self.status, self.error_body())

    def answer(self) -> None:
        raise NotImplementedError

    def error_body(self) -> dict[str, Any]:
        raise NotImplementedError

    def _send_json(self, status: int, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _start_events(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True


class ResponsesAPI(_Stub):
    """POST /v1/responses: one assistant message and its usage (200), or the API's error for 401 and 429."""

    def answer(self) -> None:
        self._start_events()
        message = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
                   "content": [{"type": "output_text", "text": "STUB-ANSWER: done.", "annotations": []}]}
        usage = {"input_tokens": 1000, "input_tokens_details": {"cached_tokens": 200}, "output_tokens": 30,
                 "output_tokens_details": {"reasoning_tokens": 10}, "total_tokens": 1030}
        for event in ({"type": "response.created", "response": {"id": "resp_1"}},
                      {"type": "response.output_item.done", "output_index": 0, "item": message},
                      {"type": "response.completed", "response": {"id": "resp_1", "usage": usage}}):
            self.wfile.write(f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode())

    def error_body(self) -> dict[str, Any]:
        if self.status == 401:
            return {"error": {"message": "Missing bearer or basic authentication in header",
                              "type": "invalid_request_error", "param": None, "code": None}}
        return {"error": {"message": "Rate limit reached for requests", "type": "requests", "param": None,
                          "code": "rate_limit_exceeded"}}


class GeminiAPI(_Stub):
    """POST /v1beta/models/M:streamGenerateContent: one answer and its usage (200), or a spent daily quota (429)."""

    def answer(self) -> None:
        self._start_events()
        chunk = {"candidates": [{"content": {"parts": [{"text": "STUB-ANSWER: gemini done."}], "role": "model"},
                                 "finishReason": "STOP", "index": 0}],
                 "usageMetadata": {"promptTokenCount": 900, "candidatesTokenCount": 25, "totalTokenCount": 940,
                                   "thoughtsTokenCount": 15},
                 "modelVersion": "gemini-stub"}
        self.wfile.write(f"data: {json.dumps(chunk)}\r\n\r\n".encode())

    def error_body(self) -> dict[str, Any]:
        violation = {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                     "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}
        return {"error": {"code": self.status, "message": "Resource has been exhausted (e.g. check quota).",
                          "status": "RESOURCE_EXHAUSTED",
                          "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                                       "violations": [violation]}]}}


@contextlib.contextmanager
def serving(kind: type[BaseHTTPRequestHandler], status: int) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A stub of `kind` (a handler with `status` and `requests` class attributes) answering `status`, on a free
    loopback port: yields its base URL and the requests it got."""
    handler = cast(type[_Stub], type(kind.__name__, (kind,), {"status": status, "requests": []}))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler.requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
