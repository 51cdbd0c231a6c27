"""The site's pages, its login, and its analytics hooks."""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    send_from_directory,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from flask_analytics import Analytics
from flask_analytics.ingest.demo import PRICES

bp = Blueprint("site", __name__)

POSTS = {
    "privacy-first-analytics": (
        "Privacy-first analytics",
        "Counting visits does not need cookies, fingerprints or a third party. "
        "A daily salted hash of an anonymized address is enough to tell visits apart.",
    ),
    "cookieless-tracking-explained": (
        "Cookieless tracking, explained",
        "Every day a new random salt is drawn and yesterday's is deleted, so nobody, "
        "not even you, can link a visitor across days.",
    ),
    "flask-tips": (
        "Ten Flask tips",
        "Use the app factory, keep extensions unbound, and test with the test client.",
    ),
    "postgres-rollups": (
        "Rollups in plain SQL",
        "Window functions turn raw events into sessions; INSERT ... SELECT does the rest.",
    ),
}


def register_analytics_hooks(analytics: Analytics) -> None:
    """Dashboard access for logged-in admins, and the plan of signed-up visitors."""

    @analytics.dashboard_access
    def is_admin() -> bool:
        return bool(session.get("admin"))

    @analytics.enrich
    def add_plan(event: dict[str, Any], req: Any) -> None:
        # The plan is known for visitors who signed up in this browser session; the
        # site's own session cookie, not the analytics, remembers it.
        if req is not None and event.get("plan") is None:
            event["plan"] = session.get("plan")
        # Signups say which plan they chose (also the demo traffic's, recorded outside
        # any request).
        props = event.get("props") or {}
        if event.get("plan") is None and event["name"] == "signup" and props.get("plan"):
            event["plan"] = str(props["plan"])[:16]


def _csrf_token() -> str:
    token = session.get("csrf")
    if token is None:
        token = session["csrf"] = secrets.token_urlsafe(16)
    return str(token)


def _check_csrf() -> None:
    sent = request.form.get("csrf", "")
    if not hmac.compare_digest(sent, session.get("csrf", "")):
        abort(400, "The form expired: reload the page and try again.")


#: Variants of the site's A/B test.
AB_VARIANTS = ("A", "B")


@bp.before_request
def pick_ab_variant() -> None:
    """The visitor's A/B test variant, drawn once per browser session.

    Kept in the site's own session cookie (the analytics set none): the site's pages
    pass it to the tracker (``analytics_script(fields=...)`` in base.html), and the
    ``ab_variant`` column, declared client-settable, records it with every event.
    Site pages only: the collect endpoint and the dashboard never set the cookie.
    """
    variant = session.get("ab_variant")
    if variant not in AB_VARIANTS:
        variant = session["ab_variant"] = secrets.choice(AB_VARIANTS)
    g.ab_variant = variant


@bp.app_context_processor
def inject() -> dict[str, Any]:
    return {"csrf_token": _csrf_token, "posts": POSTS}


@bp.get("/")
def home() -> ResponseReturnValue:
    return render_template("index.html")


@bp.get("/blog")
def blog() -> ResponseReturnValue:
    return render_template("blog.html")


@bp.get("/blog/<slug>")
def post(slug: str) -> ResponseReturnValue:
    if slug not in POSTS:
        abort(404)
    title, body = POSTS[slug]
    return render_template("post.html", title=title, body=body)


@bp.get("/pricing")
def pricing() -> ResponseReturnValue:
    return render_template("pricing.html")


@bp.route("/signup", methods=["GET", "POST"])
def signup() -> ResponseReturnValue:
    if request.method == "POST":
        _check_csrf()
        plan = request.form.get("plan", "free")
        if plan not in ("free", "pro", "team"):
            plan = "free"
        session["plan"] = plan
        # A server-side event: the pipeline drops bots and anonymizes the address exactly
        # as for browser events; the enrich hook adds the plan.
        from . import Order, analytics, db

        # The visitor comes from the request: the signup lands in their visit.
        analytics.track("signup", request=request, props={"plan": plan})
        if plan in PRICES:
            # A paid plan is an order; once committed, track_model records its purchase
            # with its revenue (exact decimals, summed per currency).
            db.session.add(Order(plan=plan, total=PRICES[plan]["EUR"], currency="EUR"))
            db.session.commit()
        flash(f"Welcome aboard! You are on the {plan} plan.")
        return redirect(url_for("site.home"))
    return render_template("signup.html")


@bp.get("/download/guide.pdf")
def download() -> ResponseReturnValue:
    return send_from_directory(
        current_app.static_folder or "static", "guide.pdf", as_attachment=True
    )


@bp.get("/app")
@bp.get("/app/<path:section>")
def spa(section: str = "") -> ResponseReturnValue:
    return render_template("app.html")


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    if request.method == "POST":
        _check_csrf()
        expected = current_app.config["ADMIN_PASSWORD"]
        if hmac.compare_digest(request.form.get("password", ""), expected):
            session["admin"] = True
            target = request.args.get("next", "")
            # Only local paths: never an open redirect.
            if not target.startswith("/") or target.startswith("//"):
                target = "/analytics/"
            return redirect(target)
        flash("Wrong password.")
    return render_template("login.html")


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    _check_csrf()
    session.pop("admin", None)
    return redirect(url_for("site.home"))


@bp.app_errorhandler(403)
def forbidden(error: Exception) -> ResponseReturnValue:
    # The dashboard answers 403 until the visitor logs in: send people to the login page
    # (API and CSV clients keep the 403).
    dashboard = request.path.startswith(current_app.config["ANALYTICS_DASHBOARD_URL"])
    wants_page = request.accept_mimetypes.accept_html and "/api/" not in request.path
    if dashboard and wants_page and not session.get("admin"):
        return redirect(url_for("site.login", next=request.full_path.rstrip("?")))
    return "Forbidden", 403
