"""The API's JSON parser: DRF's, refusing bodies nested deeper than any endpoint reads.

Python's json module recurses once per level: a 2 KB body of 1,000 `[` raises RecursionError, which is
no ParseError, so it was a 500 with a long traceback. Nesting is measured before parsing, in one pass
over the bytes without recursion, so no depth can reach the decoder, a serializer or a log line.
"""

import io

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# The deepest body any endpoint accepts is an object of lists of objects (a bulk import row): 3. Room
# to grow without letting anything near the recursion limit.
MAX_JSON_DEPTH = 32
_OPENERS, _CLOSERS, _QUOTE, _BACKSLASH = frozenset(b"[{"), frozenset(b"]}"), ord('"'), ord("\\")


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when brackets outside strings nest deeper than `limit` (malformed JSON is the decoder's to refuse)."""
    if body.count(b"[") + body.count(b"{") <= limit:  # most bodies: no need to look closer
        return False
    depth = 0
    in_string = escaped = False
    for byte in body:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPENERS:
            depth += 1
            if depth > limit:
                return True
        elif byte in _CLOSERS:
            depth -= 1
    return False


class DepthLimitedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        if json_depth_exceeds(body):
            raise ParseError(f"JSON parse error - nested deeper than {MAX_JSON_DEPTH} levels.")
        return super().parse(io.BytesIO(body), media_type, parser_context)
