"""API tokens for integrators: one is created with a username and password (the login lockout counts failures here
as on the login page) and expires after FINELINE_API_TOKEN_DAYS; the token in use can be revoked."""

from django.contrib.auth import authenticate
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from knox.auth import TokenAuthentication
from knox.models import AuthToken
from knox.settings import knox_settings
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)


TokenSerializer = inline_serializer(
    "Token",
    {
        "token": serializers.CharField(help_text="Send as 'Authorization: Token <token>'; shown only this once."),
        "token_prefix": serializers.CharField(help_text="Its public prefix, to name it when revoking."),
        "expiry": serializers.DateTimeField(allow_null=True, help_text="When it stops working (null: never)."),
    },
)


class TokenCreateView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]

    @extend_schema(
        request=TokenRequestSerializer,
        responses={
            201: TokenSerializer,
            401: OpenApiResponse(description="Wrong username or password."),
            429: OpenApiResponse(description="Locked after too many failed logins."),
        },
    )
    def post(self, request):
        serializer = TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = authenticate(request._request, **serializer.validated_data)
        if user is None or not user.is_active:
            return Response({"detail": "Wrong username or password."}, status=status.HTTP_401_UNAUTHORIZED)
        token, raw = AuthToken.objects.create(user=user, expiry=knox_settings.TOKEN_TTL)
        body = {"token": raw, "token_prefix": token.token_key, "expiry": token.expiry}
        return Response(body, status=status.HTTP_201_CREATED)


class TokenRevokeView(APIView):
    authentication_classes = [TokenAuthentication]

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        """Revoke the token this request is authenticated with."""
        request.auth.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
