from rest_framework import serializers

from core.api.fields import StrictCharField, StrictEmailField


class SignupRequestSerializer(serializers.Serializer):
    name = StrictCharField(max_length=200, help_text="The business's name.")
    subdomain = StrictCharField(
        max_length=100, help_text="DNS label: 3-63 of a-z, 0-9 and hyphens, not at either end; not reserved."
    )
    owner_email = StrictEmailField()
    password = StrictCharField(write_only=True, max_length=128, style={"input_type": "password"})


class SignupTenantSerializer(serializers.Serializer):
    name = serializers.CharField()
    subdomain = serializers.CharField()
    url = serializers.URLField(help_text="The tenant's home.")


class SignupResponseSerializer(serializers.Serializer):
    tenant = SignupTenantSerializer()
    login_url = serializers.URLField(help_text="Single-use link that signs the owner in; valid for about a minute.")
