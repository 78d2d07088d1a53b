import Mustache

/// The console's Mustache templates, compiled into the binary (no resource files to find at run
/// time, in a fresh clone or a release build). `{{x}}` is HTML-escaped; the only `{{{…}}}` are the
/// layout's `content` and `hotbar`, which are themselves rendered templates.
enum Templates {
    static let all: [String: String] = [
        "layout": layout, "signin": signin, "queue": queue, "rows": rows, "decision": decision, "bulk_confirm": bulkConfirm,
        "bulk_result": bulkResult, "pipeline": pipeline, "pipeline_sections": pipelineSections, "chart": chart, "audit": audit, "message": message,
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
        <div id="pipeline" data-refresh="/pipeline/fragment">{{> pipeline_sections}}</div>
        """

    /// The pipeline page's content (also its refresh fragment). Each section keeps the id of the
    /// monitor view it shows (`monitor-<view>`): notifications and bookmarks link to them.
    static let pipelineSections = """
        <p class="dim">As of {{now}}. Ages are how long ago or how long for; amounts are in whole coins.</p>
        <section id="pipeline-summary" class="summary{{^allClear}} attention{{/allClear}}">
        {{#allClear}}<p>Nothing needs a look: no dead jobs or callbacks, no expired leases, every chain's scanner running, no review past its SLA.</p>{{/allClear}}
        {{^allClear}}<h2>Needs a look</h2><ul>{{#problems}}<li><a href="{{href}}">{{text}}</a></li>{{/problems}}</ul>{{/allClear}}
        </section>

        <section class="monitor" id="monitor-queue">
          <h2>Stages</h2>
          <table class="pipeline"><thead><tr><th>stage</th><th class="num">ready</th><th class="num">scheduled</th><th class="num">running</th>
          <th class="num">expired leases</th><th class="num">dead</th><th class="num">oldest ready</th><th class="num">completed, last minute</th>
          <th class="num">completed, last hour</th><th class="num">retried, last hour</th><th class="num">died, last hour</th><th>needs a look</th></tr></thead>
          <tbody>{{#stages}}<tr id="stage-{{stage}}"{{#warn}} class="warn"{{/warn}}><td>{{stage}}</td><td class="num">{{ready}}</td><td class="num">{{scheduled}}</td>
          <td class="num">{{running}}</td><td class="num{{#expiredWarn}} bad{{/expiredWarn}}">{{expired}}</td><td class="num{{#deadWarn}} bad{{/deadWarn}}">{{dead}}</td>
          <td class="num{{#oldestWarn}} bad{{/oldestWarn}}">{{oldest}}</td><td class="num">{{lastMinute}}</td><td class="num">{{lastHour}}</td>
          <td class="num">{{retried}}</td><td class="num{{#diedWarn}} bad{{/diedWarn}}">{{died}}</td><td>{{#notes}}<span class="flag">{{.}}</span> {{/notes}}</td></tr>
          {{/stages}}</tbody></table>
          <h3>Last hour, per stage</h3>
          <p class="hint">Jobs completed per minute, and how long the oldest ready job had waited (the dashed line: {{oldestReadyWarning}}, where a stage is marked). A gap: no worker of the stage measured that minute.</p>
          <div class="charts" id="charts-stages">{{#stageCharts}}<div class="chart-card" id="charts-stage-{{name}}"><h4>{{name}}</h4>{{#charts}}{{> chart}}{{/charts}}</div>{{/stageCharts}}</div>
        </section>

        <section class="monitor" id="monitor-chains">
          <h2>Chains</h2>
          {{#hasChains}}
          <table class="pipeline"><thead><tr><th>chain</th><th class="num">node tip</th><th class="num">scanned</th><th class="num">lag (blocks)</th><th>last scan</th>
          <th>scanner</th><th>last error</th><th class="num">deposits waiting</th><th class="num">deep-reorg alerts</th><th>needs a look</th></tr></thead>
          <tbody>{{#chains}}<tr id="chain-{{chain}}"{{#warn}} class="warn"{{/warn}}><td>{{chain}}</td><td class="num">{{tip}}</td><td class="num">{{scanned}}</td>
          <td class="num{{#lagWarn}} bad{{/lagWarn}}">{{lag}}</td><td>{{lastScan}}</td>
          <td class="addr">{{leader}} <span class="{{#alive}}ok{{/alive}}{{^alive}}bad{{/alive}}">{{#alive}}holds the lease{{/alive}}{{^alive}}lease expired{{/alive}}</span></td>
          <td class="error">{{#error}}<span class="{{#failing}}bad{{/failing}}{{^failing}}dim{{/failing}}">{{text}}</span> <span class="dim">({{ago}})</span>{{/error}}{{^error}}<span class="dim">none</span>{{/error}}</td>
          <td class="num">{{waiting}}</td><td class="num{{#alertsWarn}} bad{{/alertsWarn}}">{{alerts}}</td><td>{{#notes}}<span class="flag">{{.}}</span> {{/notes}}</td></tr>
          {{/chains}}</tbody></table>
          {{/hasChains}}{{^hasChains}}<p class="empty">No chain scanned yet (is chain-worker running?).</p>{{/hasChains}}
          {{#hasChainCharts}}<h3>Last hour, per chain</h3>
          <p class="hint">Blocks between the node's tip and the scanned height (the dashed line: the chain's confirmations). A gap: no scanner held the lease that minute.</p>
          <div class="charts" id="charts-chains">{{#chainCharts}}<div class="chart-card" id="charts-chain-{{name}}"><h4>{{name}}</h4>{{#charts}}{{> chart}}{{/charts}}</div>{{/chainCharts}}</div>{{/hasChainCharts}}
        </section>

        <section class="monitor" id="monitor-reviews">
          <h2>Reviews waiting, per level</h2>
          {{#hasReviews}}
          <table class="pipeline"><thead><tr><th>level</th><th>SLA</th><th class="num">waiting</th><th class="num">merchants</th><th class="num">past the SLA</th>
          <th class="num">most overdue by</th><th class="num">four eyes</th><th class="num">1 of 2 approved</th><th class="num">oldest at this level</th><th class="num">oldest waiting</th></tr></thead>
          <tbody>{{#reviews}}<tr id="review-level-{{level}}"{{#warn}} class="warn"{{/warn}}><td><a href="{{href}}">{{level}} {{name}}</a></td><td>{{sla}}</td>
          <td class="num">{{waiting}}</td><td class="num">{{merchants}}</td><td class="num{{#warn}} bad{{/warn}}">{{overdue}}</td><td class="num">{{overdueBy}}</td>
          <td class="num">{{fourEyes}}</td><td class="num">{{half}}</td><td class="num">{{atLevel}}</td><td class="num">{{oldest}}</td></tr>
          {{/reviews}}</tbody></table>
          {{/hasReviews}}{{^hasReviews}}<p class="empty">No withdrawal waits for people.</p>{{/hasReviews}}
        </section>

        <section class="monitor" id="monitor-withdrawals">
          <h2>Withdrawals by state</h2>
          <p class="hint">Open ones, and those finished in the last day. Approved, signed or broadcast for longer than {{stuckAfter}} is marked.</p>
          {{#hasWithdrawals}}
          <table class="pipeline"><thead><tr><th>chain</th><th>coin</th><th>state</th><th class="num">withdrawals</th><th class="num">amount</th><th class="num">oldest in this state</th></tr></thead>
          <tbody>{{#withdrawals}}<tr{{#warn}} class="warn"{{/warn}}><td>{{chain}}</td><td>{{symbol}}</td><td>{{#href}}<a href="{{.}}">{{state}}</a>{{/href}}{{^href}}{{state}}{{/href}}</td>
          <td class="num">{{count}}</td><td class="num">{{amount}} {{symbol}}{{#usd}}<br><span class="dim">{{.}}</span>{{/usd}}</td><td class="num{{#warn}} bad{{/warn}}">{{oldest}}</td></tr>
          {{/withdrawals}}</tbody></table>
          {{/hasWithdrawals}}{{^hasWithdrawals}}<p class="empty">None open or finished in the last day.</p>{{/hasWithdrawals}}
        </section>

        <section class="monitor" id="monitor-payments">
          <h2>Payments by hot address and state</h2>
          <p class="hint">Signed transactions: open ones, and those settled in the last day.</p>
          {{#hasPayments}}
          <table class="pipeline"><thead><tr><th>chain</th><th>from</th><th>coin</th><th>state</th><th class="num">transactions</th><th class="num">amount</th>
          <th class="num">oldest</th><th class="num">most broadcasts</th></tr></thead>
          <tbody>{{#payments}}<tr{{#warn}} class="warn"{{/warn}}><td>{{chain}}</td><td class="addr">{{from}}</td><td>{{symbol}}</td><td>{{state}}</td><td class="num">{{count}}</td>
          <td class="num">{{amount}} {{symbol}}{{#usd}}<br><span class="dim">{{.}}</span>{{/usd}}</td><td class="num{{#warn}} bad{{/warn}}">{{oldest}}</td><td class="num">{{broadcasts}}</td></tr>
          {{/payments}}</tbody></table>
          {{/hasPayments}}{{^hasPayments}}<p class="empty">None open or settled in the last day.</p>{{/hasPayments}}
        </section>

        <section class="monitor" id="monitor-callbacks">
          <h2>Callbacks per merchant</h2>
          {{#hasCallbacks}}
          <table class="pipeline"><thead><tr><th>merchant</th><th class="num">waiting</th><th class="num">oldest waiting</th><th class="num">dead</th><th>last delivered</th></tr></thead>
          <tbody>{{#callbacks}}<tr id="callbacks-{{merchantID}}"{{#warn}} class="warn"{{/warn}}><td>{{merchant}} <span class="dim">#{{merchantID}}</span></td><td class="num">{{pending}}</td>
          <td class="num{{#oldestWarn}} bad{{/oldestWarn}}">{{oldest}}</td><td class="num{{#deadWarn}} bad{{/deadWarn}}">{{dead}}</td><td>{{delivered}}</td></tr>
          {{/callbacks}}</tbody></table>
          {{/hasCallbacks}}{{^hasCallbacks}}<p class="empty">No merchant yet.</p>{{/hasCallbacks}}
        </section>

        <section class="monitor" id="monitor-hot_wallets">
          <h2>Hot wallets</h2>
          <p class="hint">What each hot address holds by our records (receipts − payments − fees), receipts still short of their confirmations, and what open transactions take from it.</p>
          {{#hasHotWallets}}
          <table class="pipeline"><thead><tr><th>merchant</th><th>chain</th><th>hot address</th><th>coin</th><th class="num">holds</th>
          <th class="num">receipts waiting</th><th class="num">in flight</th><th>needs a look</th></tr></thead>
          <tbody>{{#hotWallets}}<tr{{#warn}} class="warn"{{/warn}}><td>{{merchant}} <span class="dim">#{{merchantID}}</span></td><td>{{chain}}</td>
          <td class="addr">{{address}} <span class="dim">{{account}}</span></td><td>{{symbol}}{{#native}} <span class="dim">(native)</span>{{/native}}</td>
          <td class="num">{{holds}} {{symbol}}{{#usd}}<br><span class="dim">{{.}}</span>{{/usd}}</td><td class="num">{{waiting}} {{symbol}}</td>
          <td class="num">{{inFlight}} {{symbol}}<br><span class="dim">{{txs}} tx</span></td><td>{{#notes}}<span class="flag">{{.}}</span> {{/notes}}</td></tr>
          {{/hotWallets}}</tbody></table>
          {{/hasHotWallets}}{{^hasHotWallets}}<p class="empty">No wallet attached yet.</p>{{/hasHotWallets}}
        </section>

        <section class="monitor" id="monitor-sweeps">
          <h2>Sweeps</h2>
          <p class="hint">Open ones, and those finished in the last day.</p>
          {{#hasSweeps}}
          <table class="pipeline"><thead><tr><th>chain</th><th>coin</th><th>state</th><th>to</th><th class="num">sweeps</th><th class="num">amount</th><th class="num">oldest</th></tr></thead>
          <tbody>{{#sweeps}}<tr{{#warn}} class="warn"{{/warn}}><td>{{chain}}</td><td>{{symbol}}</td><td>{{state}}</td><td>{{to}}</td><td class="num">{{count}}</td>
          <td class="num">{{amount}} {{symbol}}{{#usd}}<br><span class="dim">{{.}}</span>{{/usd}}</td><td class="num">{{oldest}}</td></tr>
          {{/sweeps}}</tbody></table>
          {{/hasSweeps}}{{^hasSweeps}}<p class="empty">None open or finished in the last day.</p>{{/hasSweeps}}
        </section>

        <section class="monitor" id="monitor-reorg_alerts">
          <h2>Open deep-reorg alerts{{#hasAlerts}} ({{alertCount}}){{/hasAlerts}}</h2>
          {{#hasAlerts}}
          <p class="hint">Credited deposits in the replaced blocks were left credited: check them on chain, then <code>gatewayctl chain ack-reorg --id N</code>.</p>
          <table class="pipeline"><thead><tr><th>alert</th><th>chain</th><th class="num">fork at block</th><th class="num">blocks replaced</th><th class="num">confirmations</th>
          <th>our block → the node's</th><th>credited deposits affected</th><th>detail</th><th>detected</th></tr></thead>
          <tbody>{{#alerts}}<tr id="reorg-{{id}}" class="warn"><td>{{id}}</td><td>{{chain}}</td><td class="num">{{fork}}</td><td class="num bad">{{depth}}</td><td class="num">{{confirmations}}</td>
          <td class="addr">{{oldHash}} → {{newHash}}</td><td>{{deposits}}</td><td>{{detail}}</td><td title="{{detectedAt}}">{{detected}}</td></tr>
          {{/alerts}}</tbody></table>
          {{/hasAlerts}}{{^hasAlerts}}<p class="empty">None.</p>{{/hasAlerts}}
        </section>

        <section class="monitor" id="monitor-dead_jobs">
          <h2>Dead jobs{{#hasDeadJobs}} ({{deadJobCount}}){{/hasDeadJobs}}</h2>
          {{#hasDeadJobs}}<p class="hint">Retry (admins) puts a job back in its queue: its stage runs it again with its usual checks. {{deadJobsCut}}</p>{{/hasDeadJobs}}
          {{#hasDeadJobs}}
          <table class="pipeline"><thead><tr><th>job</th><th>stage</th><th>kind</th><th>for</th><th>attempts</th><th>died</th><th>last error</th>{{#canRetry}}<th></th>{{/canRetry}}</tr></thead>
          <tbody>{{#deadJobs}}<tr id="dead-job-{{id}}"><td>{{id}}</td><td>{{stage}}</td><td>{{kind}}</td><td>{{#href}}<a href="{{.}}">{{ref}}</a>{{/href}}{{^href}}{{ref}}{{/href}}</td>
          <td>{{attempts}}</td><td title="{{diedAt}}">{{died}}</td><td class="error">{{error}}</td>
          {{#retry}}<td><form method="post" action="/jobs/{{id}}/retry"><input type="hidden" name="back" value="/pipeline"><button>retry</button></form></td>{{/retry}}</tr>
          {{/deadJobs}}</tbody></table>
          {{/hasDeadJobs}}{{^hasDeadJobs}}<p class="empty">None.</p>{{/hasDeadJobs}}
        </section>

        <section class="monitor" id="monitor-dead_callbacks">
          <h2>Dead callbacks{{#hasDeadCallbacks}} ({{deadCallbackCount}}){{/hasDeadCallbacks}}</h2>
          {{#hasDeadCallbacks}}<p class="hint">Resend (admins) queues the callback's stored bytes again, unchanged. {{deadCallbacksCut}}</p>{{/hasDeadCallbacks}}
          {{#hasDeadCallbacks}}
          <table class="pipeline"><thead><tr><th>callback</th><th>merchant</th><th>for</th><th>status</th><th>URL</th><th class="num">attempts</th><th>last error</th><th>created</th>{{#canRetry}}<th></th>{{/canRetry}}</tr></thead>
          <tbody>{{#deadCallbacks}}<tr id="dead-callback-{{id}}"><td>{{id}}</td><td>{{merchant}} <span class="dim">#{{merchantID}}</span></td>
          <td>{{#href}}<a href="{{.}}">{{trade}}</a>{{/href}}{{^href}}{{trade}}{{/href}}</td><td>{{status}}</td><td class="addr">{{url}}</td><td class="num">{{attempts}}</td>
          <td class="error">{{error}}</td><td title="{{createdAt}}">{{created}}</td>
          {{#resend}}<td><form method="post" action="/callbacks/{{id}}/resend"><input type="hidden" name="back" value="/pipeline"><button>resend</button></form></td>{{/resend}}</tr>
          {{/deadCallbacks}}</tbody></table>
          {{/hasDeadCallbacks}}{{^hasDeadCallbacks}}<p class="empty">None.</p>{{/hasDeadCallbacks}}
        </section>
        """

    /// One line chart of the last hour (`Charts.chart` computes the geometry). Inline SVG: no script,
    /// no style attribute (the CSP allows neither); console.css colours it by class.
    static let chart = """
        <figure class="chart" id="{{id}}">
        <svg viewBox="0 0 320 120" role="img" aria-labelledby="{{id}}-title {{id}}-desc">
        <title id="{{id}}-title">{{title}}</title>
        <desc id="{{id}}-desc">{{summary}}</desc>
        <line class="grid" x1="{{left}}" y1="{{top}}" x2="{{right}}" y2="{{top}}"/><line class="grid" x1="{{left}}" y1="{{midY}}" x2="{{right}}" y2="{{midY}}"/>
        <line class="axis" x1="{{left}}" y1="{{bottom}}" x2="{{right}}" y2="{{bottom}}"/><line class="axis" x1="{{left}}" y1="{{top}}" x2="{{left}}" y2="{{bottom}}"/>
        <text class="end" x="{{labelX}}" y="{{yTopAt}}">{{yTop}}</text><text class="end" x="{{labelX}}" y="{{yMidAt}}">{{yMid}}</text><text class="end" x="{{labelX}}" y="{{yZeroAt}}">0</text>
        <text x="{{left}}" y="{{timeY}}">{{xStart}}</text><text class="middle" x="{{midX}}" y="{{timeY}}">{{xMid}}</text><text class="end" x="{{right}}" y="{{timeY}}">{{xEnd}}</text>
        {{#limit}}<line class="limit" x1="{{left}}" y1="{{y}}" x2="{{right}}" y2="{{y}}"><title>marked above {{text}}</title></line>{{/limit}}
        <path class="line" d="{{path}}"/>
        {{#points}}<circle cx="{{x}}" cy="{{y}}" r="2.2" data-minute="{{minute}}" data-value="{{raw}}"><title>{{minute}} UTC: {{value}}</title></circle>{{/points}}
        {{#empty}}<text class="middle none" x="179" y="56">no samples in the last hour</text>{{/empty}}
        </svg>
        <figcaption>{{what}}</figcaption>
        </figure>
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
