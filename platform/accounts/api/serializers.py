from rest_framework import serializers

from accounts.models import User


class MeSerializer(serializers.ModelSerializer):
    tenant = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "email", "name", "role", "tenant"]
        read_only_fields = fields

    def get_tenant(self, user: User) -> str:
        return self.context["request"].tenant.slug
