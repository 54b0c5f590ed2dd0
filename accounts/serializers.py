from typing import Any

from rest_framework import serializers

from accounts.models import User


def user_payload(user: User) -> dict[str, Any]:
    return {
        "id": user.pk,
        "username": user.username,
        "phone": user.phone,
        "isMember": user.is_active_member,
        "quotaRemaining": user.quota_remaining,
        "quotaExpireAt": user.quota_expire_at.isoformat() if user.quota_expire_at else None,
    }


class LoginSerializer(serializers.Serializer[Any]):
    username = serializers.CharField(max_length=150, trim_whitespace=True)
    password = serializers.CharField(max_length=128, trim_whitespace=False)


class RefreshSerializer(serializers.Serializer[Any]):
    refresh = serializers.CharField(max_length=2048)


class UserSerializer(serializers.Serializer[Any]):
    """Schema only: the payload comes from user_payload."""

    id = serializers.IntegerField()
    username = serializers.CharField()
    phone = serializers.CharField(allow_null=True)
    isMember = serializers.BooleanField()
    quotaRemaining = serializers.IntegerField()
    quotaExpireAt = serializers.DateTimeField(allow_null=True)


class LoginAnswerSerializer(serializers.Serializer[Any]):
    token = serializers.CharField()
    refresh = serializers.CharField()
    user = UserSerializer()


class TokenPairSerializer(serializers.Serializer[Any]):
    token = serializers.CharField()
    refresh = serializers.CharField()
