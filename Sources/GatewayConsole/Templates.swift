import Mustache

/// The console's Mustache templates, compiled into the binary (no resource files to find at run
/// time, in a fresh clone or a release build). `{{x}}` is HTML-escaped; the only `{{{…}}}` is the
/// layout's `content`, which is itself a rendered template.
enum Templates {
    static let all: [String: String] = [
        "layout": layout, "signin": signin, "queue": queue, "rows": rows, "decision": decision, "bulk_confirm": bulkConfirm,
        "bulk_result": bulkResult, "pipeline": pipeline, "pipeline_tables": pipelineTables, "audit": audit, "message": message,
        "tabs": tabs, "hotbar": hotbar, "users": users, "totp_enrollment": totpEnrollment,
    ]

    /// The library with every template registered (partials by the same names).
    static func library() throws -> MustacheLibrary {
        var lib = MustacheLibrary()
        for (name, text) in all { try lib.register(text, named: name) }
        return lib
    }

    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · usdt-gateway console</title>
        <link rel="stylesheet" href="/static/console.css">
        <script src="/static/console.js" defer></script>
        </head>
        <body data-page="{{page}}">
        {{#user}}
        <header class="top">
          <nav>
            <a href="/queue" id="nav-queue">Review queue</a>
            <a href="/pipeline" id="nav-pipeline">Pipeline</a>
            {{#canReadAudit}}<a href="/audit" id="nav-audit">Audit</a>{{/canReadAudit}}
            {{#canManageUsers}}<a href="/users" id="nav-users">Users</a>{{/canManageUsers}}
          </nav>
          <span class="me" id="me">{{name}} · {{roleText}}</span>
          <form method="post" action="/signout" class="inline"><button type="submit" id="signout">Sign out</button></form>
        </header>
        <div class="hotbar" id="hotbar" data-refresh="/hotbar">{{{hotbar}}}</div>
        {{/user}}
        <main>
        {{#flash}}<p class="flash {{kind}}" role="status" id="flash">{{text}}</p>{{/flash}}
        {{{content}}}
        </main>
        <div id="help" class="help" hidden>
          <h2>Keys</h2>
          <dl>
            <dt>j / k</dt><dd>next / previous row</dd><dt>x</dt><dd>select the row (shift-click a box: a range)</dd>
            <dt>o</dt><dd>open the row</dd><dt>a</dt><dd>approve: opens the item's approval, which asks to confirm</dd>
            <dt>r</dt><dd>reject: opens the item's rejection (a reason is required)</dd><dt>/</dt><dd>search (filters)</dd>
            <dt>?</dt><dd>this help</dd>
          </dl>
          <p>No key pays anything without a confirm step.</p>
        </div>
        </body>
        </html>
        """

    /// The queue's tabs with their counts (also the tabs' refresh fragment).
    static let tabs = """
        {{#tabs}}<a href="{{href}}" id="tab-{{id}}" class="tab{{#active}} active{{/active}}">{{label}} <span class="count">{{count}}</span></a>{{/tabs}}
        """

    /// The hot wallet header of every page (also its refresh fragment).
    static let hotbar = """
        {{#hasHot}}Hot wallets: {{#hot}}<span class="hotline{{#short}} short{{/short}}">{{chain}} {{symbol}} {{available}} · approved, unpaid {{unpaid}}{{#short}} · <strong>short</strong>{{/short}}{{#lowWater}} · <strong>below low-water {{.}}</strong>{{/lowWater}}</span> {{/hot}}{{/hasHot}}{{^hasHot}}<span class="dim">Hot wallets: nothing held, nothing approved and unpaid.</span>{{/hasHot}}
        """

    static let signin = """
        <h1>Sign in</h1>
        <form method="post" action="/signin" class="signin" id="signin-form">
          <input type="hidden" name="next" value="{{next}}">
          <label>Name <input name="name" id="name" autocomplete="username" required autofocus value="{{name}}"></label>
          <label>Password <input name="password" id="password" type="password" autocomplete="current-password" required></label>
          <label>Code from your authenticator <input name="code" id="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9 ]{6,7}" required></label>
          <button type="submit" id="signin">Sign in</button>
        </form>
        """

    static let queue = """
        <h1>Review queue</h1>
        <nav class="tabs" id="tabs" data-refresh="/queue/tabs?{{refreshQuery}}">{{> tabs}}</nav>
        <form method="get" action="/queue" class="filters" id="filters">
          <input type="hidden" name="tab" value="{{tab}}">
          <label>merchant <input name="merchant" id="f-merchant" value="{{f.merchant}}" size="5" inputmode="numeric"></label>
          <label>coin <input name="coin" value="{{f.coin}}" size="10" placeholder="USDT or tron.USDT"></label>
          <label>state <select name="state">{{#states}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/states}}</select></label>
          <label>level <input name="level" value="{{f.level}}" size="3" inputmode="numeric"></label>
          <label>rule <input name="rule" value="{{f.rule}}" size="14"></label>
          <label>flag <select name="flag">{{#flags}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/flags}}</select></label>
          <label>amount <input name="min" value="{{f.min}}" size="8" placeholder="min"> – <input name="max" value="{{f.max}}" size="8" placeholder="max"></label>
          <label>address <input name="address" value="{{f.address}}" size="20"></label>
          <label>txid <input name="txid" value="{{f.txid}}" size="20"></label>
          <label>businessId <input name="businessId" value="{{f.businessId}}" size="12"></label>
          <button type="submit" id="filter">Filter</button>
          <a href="/queue?tab={{tab}}">clear</a>
          <a href="/queue.csv?{{query}}" id="csv">CSV</a>
        </form>
        {{#warnings}}<p class="flash error">{{.}}</p>{{/warnings}}
        <form method="post" action="/bulk" id="bulk">
          {{#filterFields}}<input type="hidden" name="f_{{name}}" value="{{value}}">{{/filterFields}}
          <input type="hidden" name="step" value="preview">
          <p class="summary" id="summary">{{from}}–{{to}} of {{total}}{{#hasPager}}{{#pager}} · {{#previous}}<a href="{{.}}" id="previous">← previous</a>{{/previous}} {{#next}}<a href="{{.}}" id="next">next →</a>{{/next}}{{/pager}}{{/hasPager}}</p>
          <table class="queue" id="queue">
            <thead><tr><th><span class="sr">select</span></th><th>id</th><th>merchant</th><th>businessId</th><th class="num">amount</th><th>destination</th>
            <th>state</th><th>level</th><th>deadline</th><th>approvals</th><th>rule</th><th>flags</th><th>remark</th></tr></thead>
            <tbody id="rows" data-refresh="/queue/rows?{{refreshQuery}}">{{> rows}}</tbody>
          </table>
          {{#canDecide}}
          <fieldset class="bulk">
            <legend>Selected rows</legend>
            <label><input type="radio" name="action" value="approve" checked> approve</label>
            <label><input type="radio" name="action" value="reject"> reject, reason <input name="reason" id="bulk-reason" size="30"></label>
            <label><input type="checkbox" name="all" value="1" id="bulk-all"> all {{total}} matching this filter</label>
            <button type="submit" id="bulk-preview">Review the selection…</button>
            <span class="hint">Four-eyes approvals are skipped: they are approved one by one on their own page.</span>
          </fieldset>
          {{/canDecide}}
        </form>
        """

    static let rows = """
        {{#rows}}<tr id="w-{{id}}" data-id="{{id}}" data-href="/withdrawals/{{id}}" class="{{#needsMe}}needs-me {{/needsMe}}{{#overdue}}overdue{{/overdue}}">
        <td><input type="checkbox" name="id" value="{{id}}" class="pick" aria-label="select {{id}}"></td>
        <td><a href="/withdrawals/{{id}}" class="open">{{id}}</a></td>
        <td>{{merchantName}} <span class="dim">#{{merchantID}}</span></td>
        <td class="bid">{{businessID}}</td>
        <td class="num">{{amountText}} {{symbol}}{{#usd}}<br><span class="dim">{{.}}</span>{{/usd}}</td>
        <td class="addr">{{address}} <span class="dim">{{chain}}</span></td>
        <td class="state">{{state}}{{#stateReason}} <span class="dim">({{.}})</span>{{/stateReason}}</td>
        <td>{{levelText}}</td>
        <td class="deadline"{{#deadlineEpoch}} data-deadline="{{.}}"{{/deadlineEpoch}}>{{countdown}}</td>
        <td>{{approvalsText}}</td>
        <td>{{rule}}</td>
        <td>{{#flags}}<span class="flag">{{.}}</span> {{/flags}}</td>
        <td class="remark">{{remark}}</td>
        </tr>
        {{/rows}}{{^rows}}<tr><td colspan="13" class="empty">Nothing here.</td></tr>{{/rows}}
        """

    static let decision = """
        <p class="crumbs"><a href="/queue">← queue</a></p>
        <h1>Withdrawal {{id}} <span class="state" id="state">{{state}}</span></h1>
        {{#message}}<p class="flash error" id="message" role="alert">{{.}}</p>{{/message}}
        {{#done}}<p class="flash ok" id="done" role="status">{{.}}</p>{{/done}}
        <div class="columns">
        <section class="facts">
          <dl>
            <dt>amount</dt><dd class="amount" id="amount">{{amountText}} {{symbol}} {{#usd}}<span class="usd" id="usd">{{.}}</span> {{/usd}}<span class="dim">({{amount}} base units, fee {{feeText}})</span></dd>
            <dt>merchant</dt><dd>{{merchantName}} <span class="dim">#{{merchantID}}</span> · 24 h approved {{dayText}} {{symbol}}</dd>
            <dt>businessId</dt><dd>{{businessID}}</dd>
            <dt>destination</dt><dd class="addr" id="address">{{address}} <span class="dim">on {{chain}}</span></dd>
            {{#memo}}<dt>memo</dt><dd>{{.}}</dd>{{/memo}}
            <dt>remark</dt><dd class="remark" id="remark">{{remark}}</dd>
            <dt>endpoint</dt><dd>{{endpoint}}</dd>
            <dt>reason</dt><dd id="reason">{{stateReason}}</dd>
            <dt>sent here by</dt><dd id="rule">{{rule}}{{#ruleDetail}}: {{.}}{{/ruleDetail}}</dd>
            <dt>created</dt><dd>{{created}}</dd>
          </dl>
        </section>
        <section class="facts">
          <h2>Review</h2>
          {{#review}}
          <p>Level {{level}} ({{levelName}}), SLA {{sla}} · <span class="deadline" data-deadline="{{deadlineEpoch}}">{{countdown}}</span> (deadline {{deadline}})</p>
          <p id="four-eyes" class="{{#fourEyes}}four-eyes{{/fourEyes}}">{{approvalsText}}</p>
          {{/review}}
          {{^review}}<p class="dim">No review level recorded.</p>{{/review}}
          <h2>Limits</h2>
          <table id="limits"><thead><tr><th>limit</th><th class="num">used</th><th class="num">of</th><th></th></tr></thead>
          <tbody>{{#limits}}<tr id="limit-{{id}}" class="{{#over}}over{{/over}}"><td>{{label}}</td><td class="num">{{used}}</td><td class="num">{{limit}}</td><td class="dim">{{#over}}<strong>over</strong> · {{/over}}{{note}}</td></tr>{{/limits}}</tbody></table>
          <h2>Destination</h2>
          <p id="destination">{{#firstPayout}}<strong class="flag">first payout of this merchant there</strong>{{/firstPayout}}{{^firstPayout}}this merchant paid there {{merchantCount}} time(s){{/firstPayout}}
          · confirmed payouts there: {{paidCount}}{{#lastPaid}}, last {{.}}{{/lastPaid}}
          {{#hasOtherMerchants}}· other merchants paying it: {{#otherMerchants}}{{.}} {{/otherMerchants}}{{/hasOtherMerchants}}</p>
          <h2>Hot wallet</h2>
          {{#hot}}<p class="hot{{#short}} short{{/short}}">{{address}}: holds {{expectedText}} {{symbol}} (in flight {{inFlightText}}) · approved, unpaid {{unpaidText}} {{symbol}}{{#short}} · <strong>short</strong>{{/short}}</p>{{/hot}}
        </section>
        </div>
        {{#canAct}}
        <section class="actions" id="actions">
          {{#cannotApprove}}<p class="four-eyes" id="cannot-approve">{{.}}</p>{{/cannotApprove}}
          {{#canApprove}}
          <form method="post" action="/withdrawals/{{id}}/approve" id="approve-form" data-confirm="{{approveConfirm}}">
            <input type="hidden" name="version" value="{{version}}">
            <label>comment <input name="comment" size="30"></label>
            {{#needsCode}}<label>TOTP code (four eyes) <input name="code" id="approve-code" inputmode="numeric" autocomplete="one-time-code" required size="7"></label>{{/needsCode}}
            <button type="submit" id="approve" class="approve">{{approveLabel}}</button>
          </form>
          {{/canApprove}}
          <form method="post" action="/withdrawals/{{id}}/reject" id="reject-form" data-confirm="Reject withdrawal {{id}}?">
            <input type="hidden" name="version" value="{{version}}">
            <label>reason (required) <input name="reason" id="reject-reason" required size="40"></label>
            <button type="submit" id="reject" class="reject">Reject</button>
          </form>
        </section>
        {{/canAct}}
        {{#cannotAct}}<p class="dim" id="cannot-act">{{.}}</p>{{/cannotAct}}
        {{#payment}}
        <section id="payment">
          <h2>Payment</h2>
          <ol class="progress">{{#steps}}<li class="{{#reached}}reached{{/reached}}">{{label}}</li>{{/steps}}</ol>
          {{#txHash}}<p>tx <code id="txhash">{{.}}</code></p>{{/txHash}}
          <table><thead><tr><th>tx</th><th>state</th><th>nonce</th><th>replaces</th><th>broadcasts</th><th>block</th><th>error</th></tr></thead>
          <tbody>{{#txs}}<tr><td><code>{{hash}}</code></td><td>{{state}}</td><td>{{nonce}}</td><td>{{replaces}}</td><td>{{broadcasts}}</td><td>{{block}}</td><td>{{error}}</td></tr>{{/txs}}</tbody></table>
        </section>
        {{/payment}}
        <section id="timeline">
          <h2>Timeline</h2>
          <table><thead><tr><th>when</th><th>what</th><th>who</th><th>detail</th><th></th></tr></thead>
          <tbody>{{#timeline}}<tr class="{{kind}}"><td>{{at}}</td><td>{{title}}</td><td>{{actor}}</td><td>{{detail}}</td>
          <td>{{#retryJob}}<form method="post" action="/jobs/{{.}}/retry"><input type="hidden" name="back" value="/withdrawals/{{id}}"><button>retry</button></form>{{/retryJob}}{{#resendCallback}}<form method="post" action="/callbacks/{{.}}/resend"><input type="hidden" name="back" value="/withdrawals/{{id}}"><button>resend</button></form>{{/resendCallback}}</td></tr>{{/timeline}}</tbody></table>
        </section>
        """

    static let bulkConfirm = """
        <h1>{{actionLabel}} {{count}} withdrawal(s)?</h1>
        {{#reason}}<p>Reason: <strong>{{.}}</strong></p>{{/reason}}
        <form method="post" action="/bulk" id="bulk-run">
          <input type="hidden" name="step" value="run">
          <input type="hidden" name="action" value="{{action}}">
          <input type="hidden" name="reason" value="{{reason}}">
          <table><thead><tr><th>id</th><th>merchant</th><th class="num">amount</th><th>destination</th><th>state</th><th>note</th></tr></thead>
          <tbody>{{#items}}<tr><td><input type="hidden" name="item" value="{{id}}:{{version}}">{{id}}</td><td>{{merchantName}}</td><td class="num">{{amountText}} {{symbol}}</td>
          <td class="addr">{{address}}</td><td>{{state}}</td><td>{{note}}</td></tr>{{/items}}</tbody></table>
          <p>Each is checked again and decided on its own; anything changed since now is skipped.</p>
          <button type="submit" id="bulk-confirm" class="{{action}}">{{actionLabel}} {{count}}</button> <a href="/queue">cancel</a>
        </form>
        """

    static let bulkResult = """
        <h1>Bulk {{action}}: {{doneCount}} done, {{skippedCount}} skipped</h1>
        <table id="bulk-results"><thead><tr><th>id</th><th>result</th><th>why</th></tr></thead>
        <tbody>{{#results}}<tr class="{{result}}"><td><a href="/withdrawals/{{id}}">{{id}}</a></td><td>{{result}}</td><td>{{why}}</td></tr>{{/results}}</tbody></table>
        <p><a href="/queue">back to the queue</a></p>
        """

    static let pipeline = """
        <h1>Pipeline</h1>
        <p class="refresh-controls">Refreshes every 5 s (with JavaScript). <a href="/pipeline">reload</a></p>
        <div id="pipeline" data-refresh="/pipeline/fragment">{{> pipeline_tables}}</div>
        """

    static let pipelineTables = """
        <p class="dim">as of {{now}}</p>
        {{#tables}}
        <section class="monitor" id="monitor-{{view}}">
          <h2>{{title}}</h2>
          <table><thead><tr>{{#columns}}<th>{{.}}</th>{{/columns}}{{#actions}}<th></th>{{/actions}}</tr></thead>
          <tbody>{{#rows}}<tr>{{#cells}}<td>{{.}}</td>{{/cells}}{{#action}}<td><form method="post" action="{{.}}"><input type="hidden" name="back" value="/pipeline"><button>{{label}}</button></form></td>{{/action}}</tr>{{/rows}}
          {{^rows}}<tr><td colspan="{{width}}" class="empty">none</td></tr>{{/rows}}</tbody></table>
        </section>
        {{/tables}}
        """

    static let audit = """
        <h1>Audit</h1>
        <form method="get" action="/audit" class="filters" id="audit-filters">
          <label>actor <input name="actor" value="{{actor}}"></label>
          <label>action <input name="action" value="{{action}}"></label>
          <label>target <input name="target" value="{{target}}"></label>
          <button type="submit">Filter</button> <a href="/audit.csv?{{query}}" id="audit-csv">CSV</a>
        </form>
        <table id="audit"><thead><tr><th>id</th><th>when</th><th>actor</th><th>action</th><th>target</th><th>detail</th></tr></thead>
        <tbody>{{#entries}}<tr><td>{{id}}</td><td>{{at}}</td><td>{{actor}}</td><td>{{action}}</td><td>{{target}}</td><td><code>{{detail}}</code></td></tr>{{/entries}}</tbody></table>
        <h2>Sign-ins</h2>
        <table id="sign-ins"><thead><tr><th>when</th><th>name</th><th>address</th><th>result</th></tr></thead>
        <tbody>{{#signIns}}<tr><td>{{at}}</td><td>{{name}}</td><td>{{ip}}</td><td>{{result}}</td></tr>{{/signIns}}</tbody></table>
        """

    static let users = """
        <h1>Users</h1>
        {{#message}}<p class="flash error" id="message" role="alert">{{.}}</p>{{/message}}
        {{#done}}<p class="flash ok" id="done" role="status">{{.}}</p>{{/done}}
        <p class="dim">Every change asks for a current code from <em>your</em> authenticator and is audited. Add users and set passwords with gatewayctl user.</p>
        <table id="users"><thead><tr><th>name</th><th>role</th><th>level</th><th>state</th><th>last sign-in</th><th>change (your TOTP code)</th></tr></thead>
        <tbody>{{#users}}<tr id="user-{{name}}"{{#disabled}} class="disabled"{{/disabled}}><td>{{name}}</td><td>{{role}}</td><td>{{level}}</td><td>{{#disabled}}disabled{{/disabled}}{{^disabled}}enabled{{/disabled}}</td><td>{{lastSignIn}}</td>
        <td>{{#me}}<span class="dim">you (change your own account with gatewayctl user)</span>{{/me}}{{^me}}
          {{#disabled}}<form method="post" action="/users/{{name}}/enable" class="inline" id="enable-{{name}}"><input type="hidden" name="version" value="{{version}}"><input name="code" size="7" inputmode="numeric" autocomplete="one-time-code" required placeholder="code"> <button>enable</button></form>{{/disabled}}
          {{^disabled}}<form method="post" action="/users/{{name}}/disable" class="inline" id="disable-{{name}}"><input type="hidden" name="version" value="{{version}}"><input name="code" size="7" inputmode="numeric" autocomplete="one-time-code" required placeholder="code"> <button>disable</button></form>{{/disabled}}
          <form method="post" action="/users/{{name}}/reset-totp" class="inline" id="reset-totp-{{name}}"><input type="hidden" name="version" value="{{version}}"><input name="code" size="7" inputmode="numeric" autocomplete="one-time-code" required placeholder="code"> <button>reset TOTP</button></form>
          <form method="post" action="/users/{{name}}/role" class="inline" id="role-{{name}}"><input type="hidden" name="version" value="{{version}}"><select name="role">{{#roles}}<option value="{{value}}"{{#selected}} selected{{/selected}}>{{value}}</option>{{/roles}}</select> level <input name="level" value="{{level}}" size="3" inputmode="numeric"> <input name="code" size="7" inputmode="numeric" autocomplete="one-time-code" required placeholder="code"> <button>set role</button></form>
        {{/me}}</td></tr>{{/users}}</tbody></table>
        """

    static let totpEnrollment = """
        <h1>New TOTP secret for {{name}}</h1>
        <p id="message">Shown once: give it to {{name}} for their authenticator app. Their old codes and sessions no longer work.</p>
        <dl><dt>secret</dt><dd><code id="totp-secret">{{secret}}</code></dd><dt>otpauth URI</dt><dd><code id="totp-uri">{{uri}}</code></dd></dl>
        <p><a href="/users">back to the users</a></p>
        """

    static let message = """
        <h1>{{heading}}</h1>
        <p id="message">{{text}}</p>
        {{#back}}<p><a href="{{.}}">back</a></p>{{/back}}
        """
}
