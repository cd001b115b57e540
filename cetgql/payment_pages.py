"""HTTP endpoints providers and browsers call: notifications, the return page, sandboxes."""

from __future__ import annotations

import html
import logging

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from cetgql.models import OrderStatus, PaymentStatus
from cetgql.payments import NotifyRequest, PaymentError
from cetgql.payments.manager import registry
from cetgql.services import eligibility, payments
from cetgql.services.clock import now

logger = logging.getLogger("cetgql.payments")

_STATUS_TEXT = {
    OrderStatus.PAID: ("缴费成功", "Paid"),
    OrderStatus.PENDING_PAYMENT: ("等待缴费结果", "Waiting for the payment result"),
    OrderStatus.LAPSED: ("订单已失效", "Lapsed"),
    OrderStatus.CANCELLED: ("订单已取消", "Cancelled"),
}


async def notify(request: Request) -> Response:
    """A provider's notification: verified and applied by the service, answered its way."""
    body = await request.body()
    form: dict[str, str] = {}
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = {k: str(v) for k, v in (await request.form()).items()}
    reply = await payments.handle_notification(
        request.path_params["provider"],
        NotifyRequest(
            method=request.method,
            headers=dict(request.headers),
            query=dict(request.query_params),
            body=body,
            form=form,
        ),
    )
    if reply is None:
        return PlainTextResponse("unknown provider", status_code=404)
    return Response(reply.body, status_code=reply.status_code, media_type=reply.content_type)


async def return_page(request: Request) -> HTMLResponse:
    """Where the browser comes back from the cashier. Asks the provider once if the outcome is
    not known yet, then shows the order; it reveals no personal data."""
    payment = await payments.payment_by_trade(request.query_params.get("trade", ""))
    if payment is None or payment.provider != request.path_params["provider"]:
        return HTMLResponse(_page("未找到该交易", "<p>未找到该交易订单号。</p>"), status_code=404)
    if payment.status in (PaymentStatus.CREATED, PaymentStatus.PENDING):
        try:
            await payments.query_and_apply(payment)
        except PaymentError:
            logger.info("return page: provider did not answer for %s", payment.out_trade_no)
        payment = await payments.payment_by_trade(payment.out_trade_no)
        assert payment is not None
    order = payment.order
    status = eligibility.effective_status(order.status, order.expires_at, now())
    zh, en = _STATUS_TEXT[OrderStatus(status.value)]
    back = (payment.redirect or {}).get("partnerReturnUrl")
    link = f'<p><a id="back" href="{html.escape(back)}">返回报名网站 Back</a></p>' if back else ""
    body = (
        f'<p id="status" data-status="{status.value}">{zh} · {en}</p>'
        f"<dl><dt>订单号 Order</dt><dd id='order'>{html.escape(order.number)}</dd>"
        f"<dt>交易订单号 Trade number</dt><dd>{html.escape(payment.out_trade_no)}</dd>"
        f"<dt>金额 Amount</dt><dd>{order.amount_fen // 100}.{order.amount_fen % 100:02d} 元</dd>"
        f"</dl>{link}"
        "<p>若已付款但显示等待结果，请稍后在报名网站点击“更新”。</p>"
    )
    return HTMLResponse(_page(zh, body))


def _page(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'>"
        f"<meta name='viewport' content='width=device-width'><title>{html.escape(title)}</title>"
        "</head><body style='font-family:sans-serif;max-width:40em;margin:2em auto'>"
        f"<h1>CET 报名缴费</h1>{body}</body></html>"
    )


def routes(*, sandboxes: bool) -> list[BaseRoute]:
    found: list[BaseRoute] = [
        Route("/payments/{provider}/notify", notify, methods=["POST"]),
        Route("/payments/{provider}/return", return_page, methods=["GET"]),
    ]
    if sandboxes:
        for provider in registry():
            found.append(
                Mount(
                    f"/sandbox/{provider.name}",
                    provider.sandbox(payments.notify_url_for(provider.name)),
                )
            )
    return found
