from django.http import HttpRequest


def request_language(request: HttpRequest | None) -> str:
    """'en' when the client asks for English first, else Chinese (the users are Chinese)."""
    if request is None:
        return "zh"
    header = request.META.get("HTTP_ACCEPT_LANGUAGE", "")
    first = header.split(",")[0].split(";")[0].strip().lower()
    return "en" if first.startswith("en") else "zh"
