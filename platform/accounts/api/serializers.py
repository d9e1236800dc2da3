from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from accounts.models import User
from core.api.fields import StrictCharField, StrictEmailField


class AffiliationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    program = serializers.CharField(source="program.slug")
    status = serializers.CharField()
    code = serializers.CharField()


class MeSerializer(serializers.ModelSerializer):
    tenant = serializers.SerializerMethodField()
    affiliations = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "email", "name", "role", "tenant", "affiliations"]
        read_only_fields = fields

    @extend_schema_field(AffiliationSerializer(many=True))
    def get_affiliations(self, user: User) -> list[dict]:
        # Staff have none; asking would cost every console request a query.
        if user.role != User.Role.AFFILIATE:
            return []
        return AffiliationSerializer(user.affiliations.select_related("program"), many=True).data

    def get_tenant(self, user: User) -> str:
        return self.context["request"].tenant.slug


class LoginSerializer(serializers.Serializer):
    email = StrictEmailField()
    password = StrictCharField(max_length=128, trim_whitespace=False)
