from django import forms


class SignupForm(forms.Form):
    name = forms.CharField(label="Business name", max_length=200)
    subdomain = forms.CharField(label="Subdomain", max_length=100)
    owner_email = forms.EmailField(label="Your email")
    password = forms.CharField(label="Password", widget=forms.PasswordInput, max_length=128)
