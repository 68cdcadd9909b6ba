-- An RFC 9457 problem response: status, the problem object, its content type.
return function(status, title, detail, headers)
  headers = headers or {}
  headers["Content-Type"] = "application/problem+json"
  return status, { type = "about:blank", title = title, status = status, detail = detail }, headers
end
