"""The API's JSON body parser: orjson, whose nesting limit (1,024) gives a 400 where the standard library's parser
raises RecursionError (a 500) on a body nested a few thousand levels deep. The body's size is bounded before it gets
here (DATA_UPLOAD_MAX_MEMORY_SIZE, read by config.middleware.RejectNulCharacters: 413)."""

import orjson
from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return orjson.loads(stream.read())
        except orjson.JSONDecodeError as error:
            raise ParseError(f"JSON parse error - {error}")
