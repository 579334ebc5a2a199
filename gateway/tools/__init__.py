"""Offline tools above the request path: ``lint`` (validate), ``cases`` and ``offline``
(``policy test``), ``explain`` and ``replay``. They drive the real pipeline and policy code;
the server never imports them."""
