/// The OpenAPI 3 document of both APIs, served at `/openapi.json` (a test checks it against the routes).
enum OpenAPIDocument {
    static let json = #"""
{
  "openapi": "3.0.3",
  "info": {
    "title": "usdt-gateway",
    "version": "1",
    "description": "The merchant Open API (wire-compatible with Udun: see udun-protocol.md) and the admin API."
  },
  "paths": {
    "/mch/address/create": {
      "post": {
        "tags": [
          "merchant"
        ],
        "summary": "Create a deposit address",
        "description": "[{merchantId, mainCoinType | coinType, callUrl, walletId?, alias?}]; data {coinType (number), address}. Always HTTP 200 for business results; also reachable as //mch/address/create.",
        "operationId": "mch_address_create",
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/Envelope"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "result",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Reply"
                }
              }
            }
          },
          "503": {
            "description": "database unavailable; retry"
          }
        }
      }
    },
    "/mch/address/create/batch": {
      "post": {
        "tags": [
          "merchant"
        ],
        "summary": "Create several deposit addresses (legacy)",
        "description": "[{merchantId, mainCoinType | coinType, callUrl, count (1-1000), alias?}]; data [{address, coinType}]. Always HTTP 200 for business results; also reachable as //mch/address/create/batch.",
        "operationId": "mch_address_create_batch",
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/Envelope"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "result",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Reply"
                }
              }
            }
          },
          "503": {
            "description": "database unavailable; retry"
          }
        }
      }
    },
    "/mch/withdraw": {
      "post": {
        "tags": [
          "merchant"
        ],
        "summary": "Submit a withdrawal; it goes through review",
        "description": "[{merchantId, mainCoinType, coinType, address, amount (whole coin units), callUrl, businessId, memo?, walletId?, remark?}]; no data. Always HTTP 200 for business results; also reachable as //mch/withdraw.",
        "operationId": "mch_withdraw",
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/Envelope"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "result",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Reply"
                }
              }
            }
          },
          "503": {
            "description": "database unavailable; retry"
          }
        }
      }
    },
    "/mch/withdraw/proxypay": {
      "post": {
        "tags": [
          "merchant"
        ],
        "summary": "Submit an automatic payment",
        "description": "same as /mch/withdraw. Always HTTP 200 for business results; also reachable as //mch/withdraw/proxypay.",
        "operationId": "mch_withdraw_proxypay",
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/Envelope"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "result",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Reply"
                }
              }
            }
          },
          "503": {
            "description": "database unavailable; retry"
          }
        }
      }
    },
    "/mch/check/address": {
      "post": {
        "tags": [
          "merchant"
        ],
        "summary": "Is this a valid address for the chain",
        "description": "[{merchantId, mainCoinType, address}]; data null, or code 4183. Always HTTP 200 for business results; also reachable as //mch/check/address.",
        "operationId": "mch_check_address",
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/Envelope"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "result",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Reply"
                }
              }
            }
          },
          "503": {
            "description": "database unavailable; retry"
          }
        }
      }
    },
    "/mch/exist/address": {
      "post": {
        "tags": [
          "merchant"
        ],
        "summary": "Does the address belong to this merchant",
        "description": "[{merchantId, mainCoinType, address}]; data null, or 4183 / 4184. Always HTTP 200 for business results; also reachable as //mch/exist/address.",
        "operationId": "mch_exist_address",
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/Envelope"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "result",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Reply"
                }
              }
            }
          },
          "503": {
            "description": "database unavailable; retry"
          }
        }
      }
    },
    "/mch/support-coins": {
      "post": {
        "tags": [
          "merchant"
        ],
        "summary": "Coins enabled for the merchant",
        "description": "{merchantId, showBalance}; data [{coinType, symbol, tokenStatus, mainCoinType, balance, decimals, name, logo, coinName, mainSymbol}]. Always HTTP 200 for business results; also reachable as //mch/support-coins.",
        "operationId": "mch_support_coins",
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/Envelope"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "result",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Reply"
                }
              }
            }
          },
          "503": {
            "description": "database unavailable; retry"
          }
        }
      }
    },
    "/mch/transaction": {
      "post": {
        "tags": [
          "merchant"
        ],
        "summary": "Recent withdrawals (legacy history query)",
        "description": "[{merchantId, businessId?, pageSize?}]; data [{tradeId, tradeType, businessId, address, amount, coinType, mainCoinType, status, txId, createdAt}]. Always HTTP 200 for business results; also reachable as //mch/transaction.",
        "operationId": "mch_transaction",
        "requestBody": {
          "required": true,
          "content": {
            "application/json": {
              "schema": {
                "$ref": "#/components/schemas/Envelope"
              }
            }
          }
        },
        "responses": {
          "200": {
            "description": "result",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Reply"
                }
              }
            }
          },
          "503": {
            "description": "database unavailable; retry"
          }
        }
      }
    },
    "/admin/merchants": {
      "get": {
        "tags": [
          "admin"
        ],
        "summary": "List merchants",
        "security": [
          {
            "bearer": []
          }
        ],
        "responses": {
          "200": {
            "description": "result",
            "content": {
              "application/json": {
                "schema": {}
              }
            }
          },
          "401": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "404": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "409": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "422": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "operationId": "admin_merchants"
      }
    },
    "/admin/withdrawals": {
      "get": {
        "tags": [
          "admin"
        ],
        "summary": "List withdrawals",
        "security": [
          {
            "bearer": []
          }
        ],
        "responses": {
          "200": {
            "description": "result",
            "content": {
              "application/json": {
                "schema": {}
              }
            }
          },
          "401": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "404": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "409": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "422": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "parameters": [
          {
            "name": "merchant",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "state",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "limit",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string"
            }
          }
        ],
        "operationId": "admin_withdrawals"
      }
    },
    "/admin/withdrawals/{id}": {
      "get": {
        "tags": [
          "admin"
        ],
        "summary": "Show a withdrawal",
        "security": [
          {
            "bearer": []
          }
        ],
        "responses": {
          "200": {
            "description": "result",
            "content": {
              "application/json": {
                "schema": {}
              }
            }
          },
          "401": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "404": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "409": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "422": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "integer"
            }
          }
        ],
        "operationId": "admin_withdrawal"
      }
    },
    "/admin/withdrawals/{id}/approve": {
      "post": {
        "tags": [
          "admin"
        ],
        "summary": "Approve a withdrawal waiting in review",
        "description": "The token names the reviewer; it may decide reviews up to its review level (gatewayctl admin token add NAME --level N). Above review.four_eyes_above two different reviewers must approve: the first approval is recorded and the withdrawal stays pending_review (its version moves on); the same reviewer approving twice is a 409 that changes nothing.",
        "security": [
          {
            "bearer": []
          }
        ],
        "responses": {
          "200": {
            "description": "result",
            "content": {
              "application/json": {
                "schema": {}
              }
            }
          },
          "401": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "the token's reviewer may not decide a review at this level",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "404": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "409": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "422": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "integer"
            }
          }
        ],
        "requestBody": {
          "required": false,
          "content": {
            "application/json": {
              "schema": {
                "type": "object",
                "properties": {
                  "version": {
                    "type": "integer"
                  }
                }
              }
            }
          }
        },
        "operationId": "admin_withdrawal_approve"
      }
    },
    "/admin/withdrawals/{id}/reject": {
      "post": {
        "tags": [
          "admin"
        ],
        "summary": "Reject a withdrawal waiting in review (reason required)",
        "security": [
          {
            "bearer": []
          }
        ],
        "responses": {
          "200": {
            "description": "result",
            "content": {
              "application/json": {
                "schema": {}
              }
            }
          },
          "401": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "403": {
            "description": "the token's reviewer may not decide a review at this level",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "404": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "409": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "422": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "integer"
            }
          }
        ],
        "requestBody": {
          "required": false,
          "content": {
            "application/json": {
              "schema": {
                "type": "object",
                "required": [
                  "reason"
                ],
                "properties": {
                  "reason": {
                    "type": "string"
                  },
                  "version": {
                    "type": "integer"
                  }
                }
              }
            }
          }
        },
        "operationId": "admin_withdrawal_reject"
      }
    },
    "/admin/callbacks": {
      "get": {
        "tags": [
          "admin"
        ],
        "summary": "List callbacks",
        "security": [
          {
            "bearer": []
          }
        ],
        "responses": {
          "200": {
            "description": "result",
            "content": {
              "application/json": {
                "schema": {}
              }
            }
          },
          "401": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "404": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "409": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "422": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "parameters": [
          {
            "name": "merchant",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "state",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string"
            }
          },
          {
            "name": "limit",
            "in": "query",
            "required": false,
            "schema": {
              "type": "string"
            }
          }
        ],
        "operationId": "admin_callbacks"
      }
    },
    "/admin/callbacks/{id}/resend": {
      "post": {
        "tags": [
          "admin"
        ],
        "summary": "Send a callback again (the same stored bytes)",
        "security": [
          {
            "bearer": []
          }
        ],
        "responses": {
          "200": {
            "description": "result",
            "content": {
              "application/json": {
                "schema": {}
              }
            }
          },
          "401": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "404": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "409": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "422": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          },
          "503": {
            "description": "error",
            "content": {
              "application/json": {
                "schema": {
                  "$ref": "#/components/schemas/Error"
                }
              }
            }
          }
        },
        "parameters": [
          {
            "name": "id",
            "in": "path",
            "required": true,
            "schema": {
              "type": "integer"
            }
          }
        ],
        "operationId": "admin_callback_resend"
      }
    },
    "/openapi.json": {
      "get": {
        "tags": [
          "meta"
        ],
        "summary": "This document",
        "operationId": "openapi",
        "responses": {
          "200": {
            "description": "OpenAPI 3 document"
          }
        }
      }
    },
    "/healthz": {
      "get": {
        "tags": [
          "meta"
        ],
        "summary": "Liveness",
        "operationId": "healthz",
        "responses": {
          "200": {
            "description": "ok"
          }
        }
      }
    },
    "/metrics": {
      "get": {
        "tags": [
          "meta"
        ],
        "summary": "Prometheus metrics",
        "operationId": "metrics",
        "responses": {
          "200": {
            "description": "text exposition format"
          }
        }
      }
    }
  },
  "components": {
    "schemas": {
      "Envelope": {
        "type": "object",
        "required": [
          "timestamp",
          "nonce",
          "sign",
          "body"
        ],
        "properties": {
          "timestamp": {
            "oneOf": [
              {
                "type": "integer"
              },
              {
                "type": "string"
              }
            ],
            "description": "Unix seconds or milliseconds, as a number or a string; must be within the configured window of server time"
          },
          "nonce": {
            "oneOf": [
              {
                "type": "integer"
              },
              {
                "type": "string"
              }
            ],
            "description": "any short number or string"
          },
          "sign": {
            "type": "string",
            "pattern": "^[0-9a-fA-F]{32}$",
            "description": "lowercase hex md5(body + key + nonce + timestamp), over the exact body string and the literal nonce/timestamp text"
          },
          "body": {
            "type": "string",
            "description": "the business JSON: an array of exactly one object (a bare object is accepted); for /mch/support-coins a plain object"
          }
        }
      },
      "Reply": {
        "type": "object",
        "required": [
          "code",
          "message"
        ],
        "properties": {
          "code": {
            "type": "integer",
            "description": "200 success; otherwise a code of udun-protocol.md \u00a74"
          },
          "message": {
            "type": "string"
          },
          "data": {}
        }
      },
      "Error": {
        "type": "object",
        "properties": {
          "error": {
            "type": "string"
          }
        }
      }
    },
    "securitySchemes": {
      "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "an admin token from `gatewayctl admin token add`"
      }
    }
  }
}
"""#
}
