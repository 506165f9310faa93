"""The licence list's import in the console, and the empty list (a template) to fill in.

Staff keep the register of licensed terminal models in a spreadsheet and import it whole after
each renewal; from the Terminal models page they can do so without a shell. A refused list
comes back on the page with every bad line's line, column and reason, nothing imported, as
``satiot terminals import`` and ``POST /api/v1/terminal-models/csv`` answer.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile
from sqlalchemy.orm import Session
from starlette.responses import Response

from satiot.api.csv_files import file_response
from satiot.oss.licence_list import (
    TEMPLATE_NAME,
    LicenceListRejected,
    ListedModel,
    import_licence_list,
    read_licence_list,
    template,
)
from satiot.web.once import FormKey, Sent
from satiot.web.session import Posted, SignedIn
from satiot.web.uploads import apply_upload
from satiot.web.views.inventory import models_page

router = APIRouter()
PATH = "/terminal-models"


@router.get(PATH + "/template.csv")
def licence_template(signed_in: SignedIn) -> Response:
    signed_in.require_any("terminal-models:read")
    return file_response(template(), TEMPLATE_NAME)


@router.post(PATH + "/import")
def import_list(
    request: Request,
    signed_in: Posted,
    file: Annotated[UploadFile, File()],
    encoding: Annotated[str, Form()] = "utf-8",
    form_key: FormKey = "",
) -> Response:
    signed_in.require_any("terminal-models:write")

    def work(session: Session, listed: list[ListedModel]) -> Sent:
        result = import_licence_list(session, signed_in.principal, listed, at=signed_in.now())
        told = ", ".join(f"{n} {what}" for what, n in asdict(result).items())
        return Sent(PATH, f"Licence list imported: {told}.")

    response, _ = apply_upload(
        request,
        signed_in,
        file,
        form_key,
        rejected=LicenceListRejected,
        read=lambda data: read_licence_list(data, encoding=encoding, at=signed_in.now()),
        work=work,
        form_page=lambda **shown: models_page(request, signed_in, **shown),
    )
    return response
