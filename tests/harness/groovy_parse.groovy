// Parses Groovy files without running them: each is compiled only up to CONVERSION (source ->
// syntax tree), before classes are resolved, so the Jenkins DSL (pipeline, stage, sh, ...) needs
// no Jenkins. Prints `parsed: <path>` or `failed: <path>` and the compiler's message per file;
// exits 1 if any file failed. Usage: groovy tests/harness/groovy_parse.groovy FILE...
import org.codehaus.groovy.control.CompilationUnit
import org.codehaus.groovy.control.MultipleCompilationErrorsException
import org.codehaus.groovy.control.Phases

int failed = 0
args.each { path ->
    def unit = new CompilationUnit()
    unit.addSource(new File(path))
    try {
        unit.compile(Phases.CONVERSION)
        println "parsed: $path"
    } catch (MultipleCompilationErrorsException e) {
        failed++
        println "failed: $path"
        println e.message
    }
}
System.exit(failed ? 1 : 0)
