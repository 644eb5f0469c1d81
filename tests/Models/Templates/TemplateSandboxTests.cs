using System.Text.Json.Nodes;
using DistributedInference.Models.Templates;

namespace DistributedInference.Models.Tests.Templates;

/// <summary>The sandbox's bounds and the shape of errors: a template cannot loop, recurse or grow without end, and
/// every failure is one line naming the template (and the line of the template when it is not raise_exception).</summary>
public sealed class TemplateSandboxTests
{
    private static string Render(string source, TemplateRenderOptions? options = null) =>
        ChatTemplate.Parse(source, "t.jinja").Render(new JsonObject(), options);

    [Fact]
    public void Loop_iterations_are_bounded()
    {
        var options = new TemplateRenderOptions { MaxLoopIterations = 1000 };
        Assert.Equal(999, Render("{% for i in range(999) %}x{% endfor %}", options).Length);
        var e = Assert.Throws<TemplateException>(() => Render("{% for i in range(100) %}{% for j in range(100) %}{% endfor %}{% endfor %}", options));
        Assert.Equal("SecurityError", e.ErrorType);
        Assert.Contains("loop iterations", e.Reason);
    }

    [Fact]
    public void Output_length_is_bounded()
    {
        var options = new TemplateRenderOptions { MaxOutputLength = 100 };
        var e = Assert.Throws<TemplateException>(() => Render("{% for i in range(1000) %}ab{% endfor %}", options));
        Assert.Equal("SecurityError", e.ErrorType);
    }

    [Fact]
    public void Runaway_string_growth_is_refused()
    {
        var e = Assert.Throws<TemplateException>(() => Render("{% set ns = namespace(s='ab') %}{% for i in range(40) %}{% set ns.s = ns.s * 2 %}{% endfor %}{{ ns.s|length }}"));
        Assert.Equal("SecurityError", e.ErrorType);
    }

    [Fact]
    public void Macro_recursion_is_bounded()
    {
        var e = Assert.Throws<TemplateException>(() => Render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}"));
        Assert.Equal("RecursionError", e.ErrorType);
    }

    [Fact]
    public void Deep_nesting_is_a_syntax_error_not_a_crash()
    {
        var source = "{{ " + new string('(', 5000) + "1" + new string(')', 5000) + " }}";
        var e = Assert.Throws<TemplateException>(() => Render(source));
        Assert.Equal("TemplateSyntaxError", e.ErrorType);
    }

    [Fact]
    public void Nothing_outside_the_variables_is_reachable()
    {
        Assert.Equal("||", Render("{{ ''.__class__ }}|{{ messages }}|{{ range.__globals__ }}"));
        foreach (var source in new[] { "{% include 'x' %}", "{% import 'x' as y %}", "{% extends 'x' %}" })
        {
            var e = Assert.Throws<TemplateException>(() => Render(source));
            Assert.Contains("no loader", e.Reason);
        }
    }

    [Fact]
    public void Errors_are_one_line_with_the_template_name_and_line()
    {
        var e = Assert.Throws<TemplateException>(() => Render("line one\n{{ 'a' + 1 }}"));
        Assert.Equal("t.jinja line 2: TypeError: can only concatenate str (not \"int\") to str", e.Message);
        var raised = Assert.Throws<TemplateException>(() => Render("x\n{{ raise_exception('Roles must\nalternate') }}"));
        Assert.Equal("t.jinja: Roles must alternate", raised.Message);
        Assert.Equal("Roles must\nalternate", raised.Reason);
        Assert.True(raised.IsRaisedByTemplate);
        var syntax = Assert.Throws<TemplateException>(() => ChatTemplate.Parse("a\nb\n{% if %}", "bad.jinja"));
        Assert.StartsWith("bad.jinja line 3: TemplateSyntaxError: ", syntax.Message);
    }

    [Fact]
    public void A_parsed_template_renders_on_many_threads_at_once()
    {
        var template = ChatTemplate.Parse("{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + m %}{% endfor %}{{ ns.n }}");
        Parallel.For(0, 64, i =>
        {
            var messages = new JsonArray(Enumerable.Range(0, i).Select(x => (JsonNode?)JsonValue.Create(x)).ToArray());
            Assert.Equal((i * (i - 1) / 2).ToString(System.Globalization.CultureInfo.InvariantCulture), template.Render(new JsonObject { ["messages"] = messages }));
        });
    }
}
