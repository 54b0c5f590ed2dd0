from typing import Any

from rest_framework import serializers

from accounts.models import User
from core.serializers import UtcDateTimeField


class UserOut(serializers.ModelSerializer[User]):
    isMember = serializers.BooleanField(source="is_active_member")
    quotaRemaining = serializers.IntegerField(source="quota_remaining")
    quotaExpireAt = UtcDateTimeField(source="quota_expire_at", allow_null=True)

    class Meta:
        model = User
        fields = ("id", "username", "phone", "isMember", "quotaRemaining", "quotaExpireAt")
        read_only_fields = fields


class LoginIn(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=150, trim_whitespace=True)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class LoginOut(serializers.Serializer[Any]):
    token = serializers.CharField()
    refresh = serializers.CharField()
    user = UserOut()


class RefreshIn(serializers.Serializer[Any]):
    refresh = serializers.CharField(max_length=2048)


class TokenPairOut(serializers.Serializer[Any]):
    token = serializers.CharField()
    refresh = serializers.CharField()


class LogoutOut(serializers.Serializer[Any]):
    loggedOut = serializers.BooleanField()
